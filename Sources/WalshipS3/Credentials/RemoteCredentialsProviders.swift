import Foundation
import WalshipCore

/// Temporary credentials from STS `AssumeRoleWithWebIdentity`, with the token file Kubernetes
/// projects for a service account (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`). The token file
/// is read again on every refresh (Kubernetes rotates it).
public struct WebIdentityCredentialsProvider: CredentialsProvider {
    public let tokenFile: String
    public let roleARN: String
    public let sessionName: String
    /// `https://sts.<region>.amazonaws.com` unless overridden (tests use a local stand-in).
    public let stsEndpoint: String
    let transport: any HTTPTransport
    public var sourceName: String { "web identity token '\(tokenFile)' for role '\(roleARN)'" }

    public init(
        tokenFile: String, roleARN: String, sessionName: String, stsEndpoint: String, transport: any HTTPTransport
    ) {
        self.tokenFile = tokenFile
        self.roleARN = roleARN
        self.sessionName = sessionName
        self.stsEndpoint = stsEndpoint
        self.transport = transport
    }

    public func credentials() async throws -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw WalshipError(.usage, "read web identity token file '\(tokenFile)': cannot read the file")
        }
        let query: [(name: String, value: String)] = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
            ("RoleSessionName", sessionName), ("WebIdentityToken", token.trimmingWhitespace()),
        ]
        var base = stsEndpoint
        while base.hasSuffix("/") { base.removeLast() }
        let url = base + "/?" + S3URIEncoding.canonicalQuery(query)
        let response = try await transport.send(
            HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/xml")]),
            sink: .memory(limit: 1 << 20))
        guard response.isSuccess else {
            let error = S3ErrorResponse.parseSTS(status: response.status, body: response.body)
            throw WalshipError(
                .accessDenied, "AssumeRoleWithWebIdentity for role '\(roleARN)' failed", cause: error,
                isTransient: response.status >= 500)
        }
        guard let root = S3XMLElement.parse(response.body),
            let credentials = root.child("AssumeRoleWithWebIdentityResult")?.child("Credentials"),
            let keyID = credentials.text(of: "AccessKeyId"), let secret = credentials.text(of: "SecretAccessKey")
        else {
            throw WalshipError(
                .storeProtocol, "AssumeRoleWithWebIdentity for role '\(roleARN)' returned no credentials")
        }
        return AWSCredentials(
            accessKeyID: keyID, secretAccessKey: secret, sessionToken: credentials.text(of: "SessionToken"),
            expiration: credentials.text(of: "Expiration").flatMap(ISO8601.parse))
    }
}

/// Credentials from the container credentials endpoint (ECS, EKS Pod Identity):
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `http://169.254.170.2` +
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN` (or the
/// token read from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` on each refresh).
public struct ContainerCredentialsProvider: CredentialsProvider {
    public let uri: String
    public let authorizationToken: String?
    public let authorizationTokenFile: String?
    let transport: any HTTPTransport
    public var sourceName: String { "container credentials endpoint '\(uri)'" }

    public init(uri: String, authorizationToken: String?, authorizationTokenFile: String?, transport: any HTTPTransport)
    {
        self.uri = uri
        self.authorizationToken = authorizationToken
        self.authorizationTokenFile = authorizationTokenFile
        self.transport = transport
    }

    public func credentials() async throws -> AWSCredentials {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let authorizationTokenFile {
            guard let token = try? String(contentsOfFile: authorizationTokenFile, encoding: .utf8) else {
                throw WalshipError(
                    .usage, "read container authorization token file '\(authorizationTokenFile)': cannot read the file")
            }
            headers.append(("Authorization", token.trimmingWhitespace()))
        } else if let authorizationToken {
            headers.append(("Authorization", authorizationToken))
        }
        let response = try await transport.send(
            HTTPRequest(method: "GET", url: uri, headers: headers), sink: .memory(limit: 1 << 20))
        return try JSONCredentials.decode(response, source: sourceName)
    }
}

/// Credentials of the EC2 instance profile through the instance metadata service, version 2:
/// a session token from `PUT /latest/api/token`, then the role name and its credentials.
public struct InstanceMetadataCredentialsProvider: CredentialsProvider {
    public let endpoint: String
    let transport: any HTTPTransport
    public var sourceName: String { "EC2 instance metadata '\(endpoint)'" }

    public init(endpoint: String = "http://169.254.169.254", transport: any HTTPTransport) {
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        self.endpoint = base
        self.transport = transport
    }

    public func credentials() async throws -> AWSCredentials {
        let tokenResponse = try await transport.send(
            HTTPRequest(
                method: "PUT", url: "\(endpoint)/latest/api/token",
                headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], body: .bytes([])),
            sink: .memory(limit: 4096))
        guard tokenResponse.isSuccess else {
            throw WalshipError(
                .accessDenied,
                "instance metadata token request to '\(endpoint)' failed with HTTP \(tokenResponse.status)",
                isTransient: tokenResponse.status >= 500)
        }
        let token = String(decoding: tokenResponse.body, as: UTF8.self).trimmingWhitespace()
        let tokenHeader = ("X-aws-ec2-metadata-token", token)
        let roleResponse = try await transport.send(
            HTTPRequest(
                method: "GET", url: "\(endpoint)/latest/meta-data/iam/security-credentials/", headers: [tokenHeader]),
            sink: .memory(limit: 4096))
        let role =
            String(decoding: roleResponse.body, as: UTF8.self)
            .split(whereSeparator: \.isNewline).first.map { $0.trimmingWhitespace() } ?? ""
        guard roleResponse.isSuccess, !role.isEmpty else {
            throw WalshipError(.accessDenied, "instance metadata at '\(endpoint)' names no IAM role for this instance")
        }
        let response = try await transport.send(
            HTTPRequest(
                method: "GET",
                url:
                    "\(endpoint)/latest/meta-data/iam/security-credentials/\(S3URIEncoding.encode(role, keepSlash: false))",
                headers: [tokenHeader]),
            sink: .memory(limit: 1 << 20))
        return try JSONCredentials.decode(response, source: sourceName)
    }
}

/// The JSON document the container endpoint and instance metadata return.
enum JSONCredentials {
    struct Document: Decodable {
        var AccessKeyId: String?
        var SecretAccessKey: String?
        var Token: String?
        var Expiration: String?
        var Code: String?
        var Message: String?
    }

    static func decode(_ response: HTTPResponse, source: String) throws -> AWSCredentials {
        guard response.isSuccess else {
            throw WalshipError(
                .accessDenied, "credentials request to \(source) failed with HTTP \(response.status)",
                isTransient: response.status >= 500 || response.status == 429)
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(response.body)),
            let keyID = document.AccessKeyId, let secret = document.SecretAccessKey
        else {
            throw WalshipError(.storeProtocol, "credentials from \(source) are not a valid credentials document")
        }
        return AWSCredentials(
            accessKeyID: keyID, secretAccessKey: secret, sessionToken: document.Token,
            expiration: document.Expiration.flatMap(ISO8601.parse))
    }
}

/// ISO 8601 timestamps as AWS writes them (`2026-11-25T10:31:07Z`, with or without fractions).
enum ISO8601 {
    static func parse(_ text: String) -> Date? {
        CivilTime.parseRFC3339(text).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}
