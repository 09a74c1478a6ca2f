import Foundation
import WalshipCore

/// An S3 error document (`<Error><Code>…</Code><Message>…</Message>…</Error>`) and the mapping
/// from an HTTP status plus error code to walship's failure classes.
public struct S3ErrorResponse: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var requestID: String?

    public var description: String {
        var text = "HTTP \(status)"
        if !code.isEmpty { text += " \(code)" }
        if !message.isEmpty { text += ": \(message)" }
        if let requestID, !requestID.isEmpty { text += " (request id \(requestID))" }
        return text
    }

    /// Reads the error document of a response, if the body is one.
    static func parse(status: Int, body: [UInt8], headers: [String: String]) -> S3ErrorResponse {
        if let root = S3XMLElement.parse(body), root.name == "Error" {
            return S3ErrorResponse(
                status: status, code: root.text(of: "Code") ?? "", message: root.text(of: "Message") ?? "",
                requestID: root.text(of: "RequestId") ?? headers["x-amz-request-id"])
        }
        let code: String
        switch status {
        case 404: code = "NotFound"
        case 403: code = "AccessDenied"
        case 412: code = "PreconditionFailed"
        case 503: code = "ServiceUnavailable"
        default: code = ""
        }
        return S3ErrorResponse(status: status, code: code, message: "", requestID: headers["x-amz-request-id"])
    }

    /// S3 error codes that mean "try again later" whatever the status says.
    static let transientCodes: Set<String> = [
        "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException",
        "RequestThrottled", "TooManyRequests", "BadDigest", "OperationAborted", "ConditionalRequestConflict",
    ]

    /// Whether a request that failed this way may succeed if sent again.
    var isTransient: Bool {
        if Self.transientCodes.contains(code) { return true }
        return status >= 500 && status != 501 || status == 429 || status == 408
    }

    /// The walship error for this response.
    ///
    /// - Parameters:
    ///   - operation: what was attempted, e.g. "PUT object 'a/b' in bucket 'x'".
    ///   - accessKeyID: the key id used, named in 403 messages (never the secret).
    ///   - serverDate: the response's `Date` header, to report clock skew.
    func walshipError(
        operation: String, accessKeyID: String?, serverDate: Date?, now: Date = Date()
    )
        -> WalshipError
    {
        switch (status, code) {
        case (404, "NoSuchBucket"):
            return WalshipError(.bucketNotFound, "\(operation) failed: the bucket does not exist", cause: self)
        case (404, _) where code != "NoSuchUpload":
            return WalshipError(.objectNotFound, "\(operation) failed: the object does not exist", cause: self)
        case (403, _), (_, "RequestTimeTooSkewed"), (_, "SignatureDoesNotMatch"), (_, "InvalidAccessKeyId"):
            var text = "\(operation) was refused for access key id '\(accessKeyID ?? "(none)")'"
            if let serverDate {
                let skew = now.timeIntervalSince(serverDate)
                if abs(skew) > 300 || code == "RequestTimeTooSkewed" {
                    text += "; the server reports a clock skew of \(Int(skew.rounded())) s: fix this machine's clock"
                }
            } else if code == "RequestTimeTooSkewed" {
                text += "; the server reports clock skew: fix this machine's clock"
            }
            if code == "SignatureDoesNotMatch" {
                text += "; check the secret access key"
            }
            return WalshipError(.accessDenied, text, cause: self)
        case (412, _):
            return WalshipError(.objectExists, "\(operation) failed: the object already exists", cause: self)
        case (301, _), (307, _), (400, "AuthorizationHeaderMalformed"), (400, "IllegalLocationConstraintException"):
            return WalshipError(
                .storeProtocol, "\(operation) failed: the bucket is in another region or needs another endpoint",
                cause: self)
        default:
            if isTransient {
                return WalshipError(.storeUnavailable, "\(operation) failed", cause: self, isTransient: true)
            }
            return WalshipError(.storeProtocol, "\(operation) failed", cause: self)
        }
    }

    /// Parses an HTTP `Date` header (RFC 7231 IMF-fixdate).
    static func parseHTTPDate(_ text: String?) -> Date? {
        guard let text else { return nil }
        return CivilTime.parseHTTPDate(text).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}

extension S3ErrorResponse {
    /// STS wraps its error as `<ErrorResponse><Error><Code>…`.
    static func parseSTS(status: Int, body: [UInt8]) -> S3ErrorResponse {
        if let root = S3XMLElement.parse(body), let error = root.name == "Error" ? root : root.child("Error") {
            return S3ErrorResponse(
                status: status, code: error.text(of: "Code") ?? "", message: error.text(of: "Message") ?? "",
                requestID: root.text(of: "RequestId"))
        }
        return S3ErrorResponse(status: status, code: "", message: "", requestID: nil)
    }
}
