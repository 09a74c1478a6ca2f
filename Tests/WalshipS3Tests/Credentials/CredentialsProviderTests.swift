import Foundation
import Testing
import WalshipCore
import WalshipTesting

@testable import WalshipS3

/// The Python stand-in for STS, the container endpoint and IMDSv2 (Scripts/credentials_standin.py).
final class CredentialsStandIn: @unchecked Sendable {  // Immutable after init; stop() runs once.
    let process = Process()
    let endpoint: String

    init(environment: [String: String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/credentials_standin.py").path
        process.executableURL = URL(fileURLWithPath: try #require(CommandRunner.which("python3")))
        process.arguments = [script]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let port = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        endpoint = "http://127.0.0.1:\(port)"
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

@Suite("Credentials", .serialized)
struct CredentialsProviderTests {
    @Test("web identity: the projected token is exchanged with STS for temporary credentials")
    func webIdentity() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "projected-jwt-token\n".write(toFile: directory.file("token"), atomically: true, encoding: .utf8)
        let standIn = try CredentialsStandIn(environment: [
            "EXPECT_WEB_TOKEN": "projected-jwt-token", "EXPECT_ROLE_ARN": "arn:aws:iam::123456789012:role/walship",
        ])
        defer { standIn.stop() }
        let provider = try CredentialsResolver.provider(
            explicit: nil, profile: nil, region: "us-east-1",
            environment: [
                "AWS_WEB_IDENTITY_TOKEN_FILE": directory.file("token"),
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/walship", "AWS_ENDPOINT_URL_STS": standIn.endpoint,
            ], homeDirectory: nil, transport: CurlTransport())
        let credentials = try await provider.credentials()
        #expect(credentials.accessKeyID == "ASIASTANDIN1")
        #expect(credentials.sessionToken == "standin-token-1")
        #expect(credentials.expiration != nil)
        // Cached while far from expiry.
        #expect(try await provider.credentials().accessKeyID == "ASIASTANDIN1")

        // A wrong token is refused with an error that names the role, never the token.
        try "another-token".write(toFile: directory.file("token"), atomically: true, encoding: .utf8)
        let fresh = WebIdentityCredentialsProvider(
            tokenFile: directory.file("token"), roleARN: "arn:aws:iam::123456789012:role/walship", sessionName: "t",
            stsEndpoint: standIn.endpoint, transport: CurlTransport())
        do {
            _ = try await fresh.credentials()
            Issue.record("a wrong web identity token was accepted")
        } catch let error as WalshipError {
            #expect(error.code == .accessDenied)
            #expect(error.description.contains("role/walship"))
            #expect(!error.description.contains("another-token"))
        }
    }

    @Test("temporary credentials are fetched again before they expire")
    func refreshBeforeExpiry() async throws {
        let standIn = try CredentialsStandIn(environment: ["EXPECT_AUTH": "Bearer abc", "LIFETIME_SECONDS": "120"])
        defer { standIn.stop() }
        let provider = RefreshingCredentialsProvider(
            ContainerCredentialsProvider(
                uri: standIn.endpoint + "/container", authorizationToken: "Bearer abc", authorizationTokenFile: nil,
                transport: CurlTransport()),
            refreshMargin: 300)
        // Each credential lives 120 s, inside the 300 s margin: every call refreshes.
        #expect(try await provider.credentials().accessKeyID == "ASIASTANDIN1")
        #expect(try await provider.credentials().accessKeyID == "ASIASTANDIN2")
        let patient = RefreshingCredentialsProvider(
            ContainerCredentialsProvider(
                uri: standIn.endpoint + "/container", authorizationToken: "Bearer abc", authorizationTokenFile: nil,
                transport: CurlTransport()),
            refreshMargin: 60)
        let first = try await patient.credentials().accessKeyID
        #expect(try await patient.credentials().accessKeyID == first)
    }

    @Test("container endpoint: the authorization token (or token file) is sent")
    func containerEndpoint() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "Bearer from-file\n".write(toFile: directory.file("auth"), atomically: true, encoding: .utf8)
        let standIn = try CredentialsStandIn(environment: ["EXPECT_AUTH": "Bearer from-file"])
        defer { standIn.stop() }
        let provider = try CredentialsResolver.provider(
            explicit: nil, profile: nil, region: "us-east-1",
            environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.endpoint + "/container",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": directory.file("auth"),
            ], homeDirectory: nil, transport: CurlTransport())
        #expect(try await provider.credentials().secretAccessKey == "standin-secret-1")
        let wrong = ContainerCredentialsProvider(
            uri: standIn.endpoint + "/container", authorizationToken: "Bearer wrong", authorizationTokenFile: nil,
            transport: CurlTransport())
        await #expect { try await wrong.credentials() } throws: { ($0 as? WalshipError)?.code == .accessDenied }
    }

    @Test("EC2 instance metadata: IMDSv2 session token, role name, then the role's credentials")
    func instanceMetadata() async throws {
        let standIn = try CredentialsStandIn(environment: [:])
        defer { standIn.stop() }
        let provider = try CredentialsResolver.provider(
            explicit: nil, profile: nil, region: "us-east-1",
            environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": standIn.endpoint], homeDirectory: "/nonexistent",
            transport: CurlTransport())
        let credentials = try await provider.credentials()
        #expect(credentials.accessKeyID == "ASIASTANDIN1")
        #expect(credentials.sessionToken == "standin-token-1")
    }

    /// Issue 19 (item 6): with no credentials anywhere, the error said only "instance metadata
    /// token request ... failed with HTTP 403".
    @Test("with no credentials anywhere, the error names every source tried and why each gave nothing")
    func noCredentialsNamesEverySource() async throws {
        let standIn = try CredentialsStandIn(environment: ["IMDS_FORBIDDEN": "1"])
        defer { standIn.stop() }
        let provider = try CredentialsResolver.provider(
            explicit: nil, profile: nil, region: "us-east-1",
            environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": standIn.endpoint], homeDirectory: "/nonexistent",
            transport: CurlTransport())
        let error = await #expect(throws: WalshipError.self) { try await provider.credentials() }
        let message = error?.message ?? ""
        for source in [
            "no AWS credentials found", "configuration file", "AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "shared credentials file '/nonexistent/.aws/credentials': not found", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "instance metadata", "HTTP 403", "AWS_EC2_METADATA_DISABLED=true",
        ] {
            #expect(message.contains(source), "\(source) is not in: \(message)")
        }
        let disabled = #expect(throws: WalshipError.self) {
            try CredentialsResolver.provider(
                explicit: nil, profile: nil, region: "us-east-1", environment: ["AWS_EC2_METADATA_DISABLED": "true"],
                homeDirectory: "/nonexistent", transport: CurlTransport())
        }
        #expect(disabled?.message.contains("EC2 instance metadata: disabled") == true, "\(disabled?.message ?? "")")
        #expect(disabled?.code == .usage)
    }

    @Test("precedence: configuration, then environment, then the shared file; named but unusable sources are errors")
    func precedence() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file(".aws"), withIntermediateDirectories: true)
        try """
        [default]
        aws_access_key_id = FILEDEFAULT
        aws_secret_access_key = file-secret
        # a comment
        [profile backup]
        aws_access_key_id=FILEBACKUP
        aws_secret_access_key=backup-secret
        aws_session_token = backup-token
        """.write(toFile: directory.file(".aws/credentials"), atomically: true, encoding: .utf8)
        let transport = CurlTransport(options: .init())
        func source(
            _ environment: [String: String], explicit: AWSCredentials? = nil, profile: String? = nil
        ) throws -> String {
            try CredentialsResolver.provider(
                explicit: explicit, profile: profile, region: "us-east-1", environment: environment,
                homeDirectory: directory.path, transport: transport
            ).sourceName
        }
        let keys = ["AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret"]
        #expect(try source(keys, explicit: AWSCredentials(accessKeyID: "A", secretAccessKey: "B")) == "configuration")
        #expect(try source(keys) == "environment")
        #expect(try source([:]).contains("profile 'default'"))
        #expect(try source(["AWS_PROFILE": "backup"]).contains("profile 'backup'"))
        #expect(try source([:], profile: "backup").contains("profile 'backup'"))
        #expect { try source(["AWS_PROFILE": "missing"]) } throws: { ($0 as? WalshipError)?.code == .usage }
        #expect { try source(["AWS_ACCESS_KEY_ID": "only-id"]) } throws: { ($0 as? WalshipError)?.code == .usage }
        #expect { try source(["AWS_WEB_IDENTITY_TOKEN_FILE": "/x"]) } throws: { ($0 as? WalshipError)?.code == .usage }
    }

    @Test("the shared credentials file is parsed per profile, with session tokens")
    func sharedFileParsing() throws {
        let text = """
            [default]
            aws_access_key_id = A1
            aws_secret_access_key = S1
            [profile other]
            aws_access_key_id = A2
            aws_secret_access_key = S2
            aws_session_token = T2
            """
        let other = try SharedCredentialsFileProvider.credentials(in: text, profile: "other", path: "f")
        #expect(other == AWSCredentials(accessKeyID: "A2", secretAccessKey: "S2", sessionToken: "T2"))
        #expect(
            try SharedCredentialsFileProvider.credentials(in: text, profile: "default", path: "f").sessionToken == nil)
        #expect {
            try SharedCredentialsFileProvider.credentials(in: "[x]\naws_access_key_id=a", profile: "x", path: "f")
        } throws: {
            ($0 as? WalshipError)?.code == .usage
        }
    }
}
