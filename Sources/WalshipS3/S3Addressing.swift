import Foundation
import WalshipCore

/// Turns a bucket and key into the request's URL, `Host` header and (unencoded) path for
/// signing, in path-style or virtual-hosted style.
///
/// Path-style is used for every endpoint except `*.amazonaws.com` (MinIO, SeaweedFS, rclone and
/// most self-hosted stores need it), and also there when the bucket name is not a valid DNS label.
/// Keys are taken literally: no dot-segment normalization (S3 does not normalize), each byte
/// outside the unreserved set percent-encoded once, '/' kept.
struct S3Addressing: Sendable {
    let scheme: String
    /// The authority: host, plus the port when it is not the scheme's default.
    let authority: String
    /// A path prefix the endpoint itself carries (usually empty).
    let basePath: String
    let bucket: String
    let pathStyle: Bool

    init(configuration: S3Configuration) throws {
        let endpoint = configuration.endpoint ?? "https://s3.\(configuration.region).amazonaws.com"
        guard let components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw WalshipError(
                .usage, "invalid endpoint '\(endpoint)': use a URL like https://s3.example.com or http://127.0.0.1:9000"
            )
        }
        guard !configuration.bucket.isEmpty, !configuration.bucket.contains("/") else {
            throw WalshipError(.usage, "invalid bucket name '\(configuration.bucket)'")
        }
        self.scheme = scheme
        let defaultPort = scheme == "https" ? 443 : 80
        if let port = components.port, port != defaultPort {
            authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        } else {
            authority = host.contains(":") ? "[\(host)]" : host
        }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path.removingPercentEncoding ?? path
        bucket = configuration.bucket
        let isAWS = host.lowercased().hasSuffix(".amazonaws.com")
        let requested = configuration.pathStyle ?? !isAWS
        pathStyle = requested || !Self.isDNSCompatible(configuration.bucket, secure: scheme == "https")
    }

    /// Bucket names that can be a host label (lower case, digits, hyphens; dots break TLS
    /// wildcard certificates).
    static func isDNSCompatible(_ bucket: String, secure: Bool) -> Bool {
        guard (3...63).contains(bucket.count), !bucket.hasPrefix("-"), !bucket.hasSuffix("-") else { return false }
        return bucket.allSatisfy {
            ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || (!secure && $0 == ".")
        }
    }

    /// The `Host` header value.
    var host: String { pathStyle ? authority : "\(bucket).\(authority)" }

    /// The unencoded path of an object (or of the bucket when `key` is nil), as signed.
    func path(key: String?) -> String {
        let bucketPath = pathStyle ? "\(basePath)/\(bucket)" : basePath
        guard let key else { return pathStyle ? bucketPath : (basePath.isEmpty ? "/" : basePath + "/") }
        return "\(bucketPath)/\(key)"
    }

    /// The full URL for curl: the same encoding as the canonical request, so the signature holds.
    func url(key: String?, query: [(name: String, value: String)]) -> String {
        var url = "\(scheme)://\(host)\(S3URIEncoding.encode(path(key: key), keepSlash: true))"
        if !query.isEmpty {
            url += "?" + S3URIEncoding.canonicalQuery(query)
        }
        return url
    }
}

/// The URL encoding of S3 requests is the signer's, so the URL curl sends and the canonical
/// request the signature covers can never disagree.
enum S3URIEncoding {
    static func encode(_ text: String, keepSlash: Bool) -> String {
        SigV4Signer.uriEncode(text, keepSlash: keepSlash)
    }

    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        SigV4Signer.canonicalQuery(query)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
