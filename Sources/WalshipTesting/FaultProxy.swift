import Foundation
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// `scripts/testing/fault_proxy.py` in front of an S3 test server: faults by request number from a
/// seed, and the controls deterministic tests use (hold a PUT and let it land later; HEAD
/// answered with the length of its empty body).
public final class FaultProxy: @unchecked Sendable {  // Immutable after init; `process` is only signalled by stop().
    let process = Process()
    public let port: Int
    let statsPath: String
    let offPath: String
    /// Where the hold controls live (`hold`, `held`, `release`, `discard`, `landed`).
    public let controlDirectory: String

    public init(
        upstream: String, seed: UInt64, rate: Double, directory: TemporaryDirectory, headLengthZero: Bool = false
    ) throws {
        let script = TestScripts.path("fault_proxy.py")
        let portFile = directory.file("proxy.port")
        statsPath = directory.file("proxy.stats")
        offPath = directory.file("proxy.off")
        controlDirectory = directory.file("proxy-control")
        try FileManager.default.createDirectory(atPath: controlDirectory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: CommandRunner.which("python3") ?? "/usr/bin/python3")
        process.arguments =
            [
                script, "--upstream", upstream, "--seed", String(seed), "--rate", String(rate), "--port-file",
                portFile, "--stats", statsPath, "--off", offPath, "--control", controlDirectory,
            ] + (headLengthZero ? ["--head-length-zero"] : [])
        let log = directory.file("proxy.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        var port: Int?
        while port == nil && Date() < deadline && process.isRunning {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { usleep(20_000) }
        }
        guard let port else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw WalshipError(.internal, "the fault proxy did not start: \(text.suffix(500))")
        }
        self.port = port
    }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Stops the proxy process (SIGSTOP): connections are accepted by the kernel and never
    /// answered, as with a store that hangs. `thaw()` lets it go on.
    public func freeze() { kill(process.processIdentifier, SIGSTOP) }

    public func thaw() { kill(process.processIdentifier, SIGCONT) }

    /// How the proxy answers DeleteObjects: forwarded, reported deleted while nothing is deleted
    /// (as R2 has been seen to do), or refused per key with AccessDenied.
    public enum DeleteBehaviour { case forward, keep, deny }

    public func setDeletes(_ behaviour: DeleteBehaviour) {
        for name in ["delete-keep", "delete-deny"] {
            try? FileManager.default.removeItem(atPath: "\(controlDirectory)/\(name)")
        }
        switch behaviour {
        case .forward: break
        case .keep: _ = FileManager.default.createFile(atPath: "\(controlDirectory)/delete-keep", contents: Data())
        case .deny: _ = FileManager.default.createFile(atPath: "\(controlDirectory)/delete-deny", contents: Data())
        }
    }

    public func setFaults(_ on: Bool) {
        if on {
            try? FileManager.default.removeItem(atPath: offPath)
        } else {
            _ = FileManager.default.createFile(atPath: offPath, contents: Data())
        }
    }

    public var stats: [String: Int] {
        guard let data = FileManager.default.contents(atPath: statsPath),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Int]
        else { return [:] }
        return object
    }

    /// SIGKILL: a child of this process may inherit a mask that blocks SIGTERM, and the proxy
    /// has nothing to flush (it writes its counts after every request).
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    // MARK: Holding a request

    /// Holds the next PUT whose path contains `text` until `release()` or `discard()`.
    public func holdNextPut(containing text: String) throws {
        for name in ["held", "release", "discard", "landed"] {
            try? FileManager.default.removeItem(atPath: control(name))
        }
        try text.write(toFile: control("hold"), atomically: true, encoding: .utf8)
    }

    /// The path of the held PUT once the proxy holds one (waits at most `timeout`).
    public func waitUntilHeld(timeout: TimeInterval = 30) -> String? {
        waitForFile("held", timeout: timeout)
    }

    /// Forwards the held PUT; returns the upstream's HTTP status once it landed.
    public func release(timeout: TimeInterval = 30) -> Int? {
        _ = FileManager.default.createFile(atPath: control("release"), contents: Data())
        return waitForFile("landed", timeout: timeout).flatMap { Int($0) }
    }

    /// Drops the held PUT without forwarding it.
    public func discard() {
        _ = FileManager.default.createFile(atPath: control("discard"), contents: Data())
    }

    private func control(_ name: String) -> String { "\(controlDirectory)/\(name)" }

    private func waitForFile(_ name: String, timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: control(name), encoding: .utf8) { return text }
            usleep(10_000)
        }
        return nil
    }
}

/// The Python helpers in `scripts/testing` (the fault proxy, the torture test's victim process).
public enum TestScripts {
    /// The path of `scripts/testing/<name>` in this checkout.
    public static func path(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/testing/\(name)").path
    }
}

/// An S3 test server behind a fault proxy that breaks nothing until told to, and the environment
/// that points walship at the proxy (a test then counts or denies the agent's requests).
public final class ProxiedS3: Sendable {
    public let server: S3TestServer
    public let proxy: FaultProxy
    public let environment: [String: String]

    public init(
        bucket: String = "walship", kind: S3TestServer.Kind = .rclone, directory: TemporaryDirectory
    )
        async throws
    {
        server = try await S3TestServer.start(buckets: [bucket], kind: kind)
        do {
            proxy = try FaultProxy(upstream: server.endpoint, seed: 1, rate: 0, directory: directory)
        } catch {
            server.stop()
            throw error
        }
        environment = [
            "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": server.accessKeyID,
            "AWS_SECRET_ACCESS_KEY": server.secretAccessKey, "AWS_REGION": "us-east-1",
        ]
    }

    public func stop() {
        proxy.stop()
        server.stop()
    }
}
