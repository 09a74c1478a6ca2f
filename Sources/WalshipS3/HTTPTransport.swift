import WalshipCore

/// An HTTP request as the S3 client sends it: a fully encoded URL, every header (signed ones
/// included, and `Host`), and a body that is streamed, never copied.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: HTTPRequestBody

    public init(method: String, url: String, headers: [(name: String, value: String)], body: HTTPRequestBody = .none) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// Where a request body comes from.
public enum HTTPRequestBody: Sendable {
    case none
    case bytes([UInt8])
    /// `length` bytes of a local file starting at `offset`, read as curl sends them.
    case file(path: String, offset: Int64, length: Int64)

    public var length: Int64 {
        switch self {
        case .none: 0
        case .bytes(let bytes): Int64(bytes.count)
        case .file(_, _, let length): length
        }
    }
}

/// Where a successful (2xx) response body goes. Error bodies always go to memory, so an error
/// document never lands in a download.
public enum HTTPResponseSink: Sendable {
    /// Collect up to `limit` bytes; a longer body is a protocol error.
    case memory(limit: Int)
    /// Write to a new file at `path` (created, or truncated if a previous attempt left it);
    /// removed again when the request fails.
    case file(path: String)
}

/// A received response: status, headers (names lower-cased; a repeated header keeps the last
/// value) and the body when it went to memory.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
    /// Bytes of body received (also for a file sink).
    public var bodyBytes: Int64

    public init(status: Int, headers: [String: String], body: [UInt8], bodyBytes: Int64) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyBytes = bodyBytes
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Sends HTTP requests. Implementations throw only for transport failures (connection refused,
/// reset, timeout: `WalshipError` with `isTransient`); every HTTP status is returned as a
/// response for the S3 layer to interpret. Tests wrap a transport to inject faults.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest, sink: HTTPResponseSink) async throws -> HTTPResponse
}
