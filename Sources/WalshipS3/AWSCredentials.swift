import Foundation

/// An AWS access key pair, with a session token and expiration for temporary credentials.
/// Printing it shows the access key id only: the secret and the token never reach a log or an
/// error message.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String { "AWSCredentials(accessKeyID: \(accessKeyID))" }
    public var debugDescription: String { description }
}
