/// A replica URL parsed once, strictly (issue 14): `s3://bucket/prefix[?endpoint=...&region=...&
/// path-style=true|false]` or `file:///absolute/dir`. Anything that would not come back the same
/// from the keys it names is refused with the reason (exit 2), never silently cut or rewritten:
/// a fragment (`#`), user info or a port in the bucket, a `.` or `..` segment of an S3 prefix
/// (HTTP clients normalize them away, so S3 would see another key than the one signed), a
/// backslash (stores disagree on it), control characters and malformed percent-escapes.
/// Percent-escapes are decoded in both schemes. An S3 prefix's empty segments (`a//b`, a
/// trailing `/`) collapse and a file URL's path is kept as written, as they always were, so an
/// existing replica resolves to the same keys and location as before.
public struct ReplicaURL: Sendable, Equatable {
    public enum Scheme: String, Sendable { case s3, file }

    public var scheme: Scheme
    /// The bucket (S3) or the absolute directory (file), decoded.
    public var bucket: String
    /// The decoded path segments under the bucket (S3) joined by `/`; empty for file URLs.
    public var prefix: String
    /// The recognized query parameters of an S3 URL.
    public var endpoint: String?
    public var region: String?
    public var pathStyle: Bool?

    /// Parses `text`; throws `usage` naming what is wrong with it.
    public static func parse(_ text: String) throws -> ReplicaURL {
        func invalid(_ why: String) -> WalshipError {
            WalshipError(.usage, "invalid replica URL '\(text)': \(why)")
        }
        let scheme: Scheme
        var rest: Substring
        if text.hasPrefix("s3://") {
            scheme = .s3
            rest = text.dropFirst(5)
        } else if text.hasPrefix("file://") {
            scheme = .file
            rest = text.dropFirst(7)
        } else {
            throw invalid("use s3://bucket/prefix or file:///absolute/dir")
        }
        if rest.contains("#") {
            throw invalid("'#' starts a URL fragment, which would be cut from the prefix; escape it as %23")
        }
        if rest.contains("\\") { throw invalid("a backslash is not allowed (stores treat it differently); use '/'") }
        var query: Substring?
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if rest.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw invalid("control characters are not allowed")
        }
        var url: ReplicaURL
        switch scheme {
        case .s3:
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let bucket = try decode(parts.first ?? "", invalid)
            guard !bucket.isEmpty else { throw invalid("the bucket name is missing (s3://bucket/prefix)") }
            if bucket.contains("@") || bucket.contains(":") || bucket.contains("/") {
                throw invalid(
                    "'\(bucket)' is not a bucket name (no user, password or port: give the endpoint with ?endpoint=)")
            }
            let segments = try segments(parts.count > 1 ? parts[1] : "", invalid)
            url = ReplicaURL(scheme: .s3, bucket: bucket, prefix: segments.joined(separator: "/"))
        case .file:
            guard rest.hasPrefix("/") else {
                throw invalid("use file:///absolute/path (three slashes: the host part must be empty)")
            }
            let path = try decode(rest, invalid)
            if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw invalid("control characters are not allowed")
            }
            url = ReplicaURL(scheme: .file, bucket: path, prefix: "")
        }
        if let query {
            guard scheme == .s3 else { throw invalid("file URLs take no query parameters") }
            for item in query.split(separator: "&", omittingEmptySubsequences: true) {
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = try decode(pair[0], invalid)
                let value = try decode(pair.count > 1 ? pair[1] : "", invalid)
                switch name {
                case "endpoint": url.endpoint = value
                case "region": url.region = value
                case "path-style":
                    guard let flag = Bool(value) else { throw invalid("path-style must be true or false") }
                    url.pathStyle = flag
                default: throw invalid("unknown parameter '\(name)' (use endpoint, region or path-style)")
                }
            }
        }
        return url
    }

    /// The decoded, non-empty segments of a path; `.` and `..` are refused.
    private static func segments(_ path: Substring, _ invalid: (String) -> WalshipError) throws -> [String] {
        var result: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            if raw == "." || raw == ".." {
                throw invalid("'\(raw)' segments are not allowed (they do not round-trip through S3 keys or paths)")
            }
            let segment = try decode(raw, invalid)
            if segment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw invalid("control characters are not allowed")
            }
            // An escaped '/' joins the path's structure, as it always did.
            let parts = segment.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            if parts.contains(".") || parts.contains("..") {
                throw invalid("'\(raw)' decodes to '\(segment)': '.' and '..' segments are not allowed")
            }
            result += parts
        }
        return result
    }

    /// Decodes percent-escapes (UTF-8); a malformed escape is an error.
    static func decode(_ text: Substring, _ invalid: (String) -> WalshipError) throws -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                guard first != utf8.endIndex, utf8.index(after: first) != utf8.endIndex,
                    let high = hexValue(utf8[first]), let low = hexValue(utf8[utf8.index(after: first)])
                else { throw invalid("a malformed percent-escape in '\(text)'") }
                bytes.append(high << 4 | low)
                index = utf8.index(first, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw invalid("'\(text)' does not decode to UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
