import Crypto
import Foundation
import WalshipCore

/// A request to sign: raw (not percent-encoded) path and query, and every header to sign.
public struct SigV4Request: Sendable {
    public var method: String
    /// The path as the server sees it decoded, e.g. `/bucket/my key/ሴ`.
    public var path: String
    public var query: [(name: String, value: String)]
    /// Every header to sign, `Host` included. The signer signs exactly these.
    public var headers: [(name: String, value: String)]

    public init(
        method: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)]
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }
}

/// AWS Signature Version 4 (pure: no I/O, no clock; the date is a parameter).
///
/// Follows the SigV4 specification as the AWS test suite in `../shared/vectors/sigv4` encodes it:
/// canonical request (method, URI-encoded path, sorted encoded query, lower-cased sorted
/// headers with trimmed values and inner whitespace collapsed, signed header list, payload
/// hash), string to sign (algorithm, timestamp, scope, hash of the canonical request), and the
/// signing key derived by the HMAC chain "AWS4"+secret → date → region → service → "aws4_request".
/// For S3: no path normalization (keys are literal) and the payload hash in a signed
/// `x-amz-content-sha256` header.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String
    /// Remove dot segments and repeated slashes from the path before signing (never for S3).
    public var normalizePath: Bool
    /// Add and sign `x-amz-content-sha256` (always for S3).
    public var signedBodyHeader: Bool
    /// Add and sign `x-amz-security-token` (false: the token is added after signing, as STS
    /// "post-sts-header-after" expects).
    public var signSessionToken: Bool

    public static let algorithm = "AWS4-HMAC-SHA256"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(
        credentials: AWSCredentials, region: String, service: String = "s3", normalizePath: Bool = false,
        signedBodyHeader: Bool = true, signSessionToken: Bool = true
    ) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizePath = normalizePath
        self.signedBodyHeader = signedBodyHeader
        self.signSessionToken = signSessionToken
    }

    // MARK: Header signing

    /// The headers to add to the request: `x-amz-date`, `x-amz-content-sha256` (when
    /// `signedBodyHeader`), `x-amz-security-token` (with a session token) and `Authorization`.
    public func sign(_ request: SigV4Request, payloadHash: String, date: Date) -> [(name: String, value: String)] {
        let timestamp = Self.timestamp(date)
        var added: [(name: String, value: String)] = [("x-amz-date", timestamp)]
        if signedBodyHeader { added.append(("x-amz-content-sha256", payloadHash)) }
        var unsignedToken: (name: String, value: String)?
        if let token = credentials.sessionToken {
            if signSessionToken {
                added.append(("x-amz-security-token", token))
            } else {
                unsignedToken = ("x-amz-security-token", token)
            }
        }
        var signed = request
        signed.headers += added
        let canonical = canonicalRequest(signed, payloadHash: payloadHash)
        let signature = self.signature(
            stringToSign: stringToSign(canonicalRequest: canonical.text, date: date), date: date)
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(date)), SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        added.append(("Authorization", authorization))
        if let unsignedToken { added.append(unsignedToken) }
        return added
    }

    /// The canonical request and its signed-header list.
    public func canonicalRequest(_ request: SigV4Request, payloadHash: String) -> (text: String, signedHeaders: String)
    {
        let headers = Self.canonicalHeaders(request.headers)
        let signedHeaders = headers.map(\.name).joined(separator: ";")
        let text = [
            request.method.uppercased(),
            canonicalPath(request.path),
            Self.canonicalQuery(request.query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// The string to sign for a canonical request.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        [Self.algorithm, Self.timestamp(date), scope(date), Self.sha256Hex(Array(canonicalRequest.utf8))]
            .joined(separator: "\n")
    }

    /// The hex signature of a string to sign.
    public func signature(stringToSign: String, date: Date) -> String {
        let key = signingKey(date)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key)
        return Self.hex(mac)
    }

    /// `yyyyMMdd/region/service/aws4_request`.
    public func scope(_ date: Date) -> String {
        "\(Self.dateStamp(date))/\(region)/\(service)/aws4_request"
    }

    func signingKey(_ date: Date) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [Self.dateStamp(date), region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    // MARK: Query-string (presigned URL) signing

    /// The query parameters of a presigned URL for `request`, valid for `expires` seconds:
    /// the request's own query plus the `X-Amz-*` parameters and the signature.
    public func presignedQuery(
        _ request: SigV4Request, payloadHash: String, date: Date, expires: Int
    )
        -> [(name: String, value: String)]
    {
        let headers = Self.canonicalHeaders(request.headers)
        var query = request.query
        query.append(("X-Amz-Algorithm", Self.algorithm))
        query.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(date))"))
        query.append(("X-Amz-Date", Self.timestamp(date)))
        query.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken, signSessionToken { query.append(("X-Amz-Security-Token", token)) }
        query.append(("X-Amz-SignedHeaders", headers.map(\.name).joined(separator: ";")))
        var signed = request
        signed.query = query
        let canonical = canonicalRequest(signed, payloadHash: payloadHash)
        let signature = self.signature(
            stringToSign: stringToSign(canonicalRequest: canonical.text, date: date), date: date)
        query.append(("X-Amz-Signature", signature))
        if let token = credentials.sessionToken, !signSessionToken { query.append(("X-Amz-Security-Token", token)) }
        return query
    }

    // MARK: Canonical pieces

    /// The URI-encoded path: each byte outside the unreserved set as %XX, '/' kept; with
    /// `normalizePath`, dot segments removed and repeated slashes collapsed (RFC 3986 5.2.4).
    public func canonicalPath(_ path: String) -> String {
        var path = path.isEmpty ? "/" : path
        if normalizePath { path = Self.normalize(path) }
        return Self.uriEncode(path, keepSlash: true)
    }

    static func normalize(_ path: String) -> String {
        let trailingSlash = path.hasSuffix("/") && path != "/"
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." {
                if !output.isEmpty { output.removeLast() }
                continue
            }
            output.append(segment)
        }
        var result = "/" + output.joined(separator: "/")
        if trailingSlash && result != "/" { result += "/" }
        return result
    }

    /// Encoded `name=value` pairs sorted by encoded name, then encoded value.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var pairs: [(name: String, value: String)] = query.map { pair in
            (uriEncode(pair.name, keepSlash: false), uriEncode(pair.value, keepSlash: false))
        }
        // Encoded names and values are ASCII, so String order is byte order, as SigV4 requires.
        pairs.sort { left, right in left.name == right.name ? left.value < right.value : left.name < right.name }
        return pairs.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// Lower-cased names, sorted; values trimmed with inner whitespace runs collapsed to one
    /// space; repeated headers joined with ',' in their original order.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for header in headers {
            merged[header.name.lowercased(), default: []].append(collapse(header.value))
        }
        return merged.keys.sorted().map { ($0, merged[$0]!.joined(separator: ",")) }
    }

    static func collapse(_ value: String) -> String {
        value.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// SigV4 URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` (and '/' when kept) as %XX in
    /// upper-case hex.
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result.append("/")
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0F)]))
            }
        }
        return result
    }

    // MARK: Hashing and time

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: bytes))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var result = [UInt8]()
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, computed without DateFormatter (no locale or calendar
    /// surprises).
    public static func timestamp(_ date: Date) -> String { civil(date).compactTimestamp }

    /// `yyyyMMdd` in UTC.
    public static func dateStamp(_ date: Date) -> String { civil(date).compactDate }

    static func civil(_ date: Date) -> CivilTime {
        CivilTime(unixMilliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}
