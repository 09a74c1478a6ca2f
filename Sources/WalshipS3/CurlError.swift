import CCurl

/// A failed libcurl call: the `CURLcode`, `curl_easy_strerror` text and curl's detail message.
public struct CurlError: Error, Sendable, CustomStringConvertible {
    public let code: UInt32
    public let message: String
    public let detail: String

    init(_ code: CURLcode, detail: String = "") {
        self.code = code.rawValue
        self.message = String(cString: curl_easy_strerror(code))
        self.detail = detail
    }

    public var description: String {
        let base = detail.isEmpty || detail == message ? message : "\(message): \(detail)"
        return "\(base) (curl code \(code))"
    }

    /// Whether retrying may help: connection and transfer failures, not setup or TLS-verify
    /// errors.
    public var isTransient: Bool {
        switch CURLcode(code) {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
            CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
            CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR,
            CURLE_WEIRD_SERVER_REPLY, CURLE_AGAIN:
            return true
        default:
            return false
        }
    }
}

/// Throws a `CurlError` for a failed `curl_easy_setopt`.
func checkCurl(_ code: CURLcode, _ what: @autoclosure () -> String) throws {
    if code != CURLE_OK {
        throw WalshipErrorFactory.curl(CurlError(code, detail: what()), transient: false)
    }
}
