import Foundation
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// A `walship replicate` (or any walship command) running in the background, for tests that stop
/// it gracefully, kill it with SIGKILL, and read its log.
public final class AgentProcess: @unchecked Sendable {  // `process` is used from the test's thread only.
    public let process = Process()
    public let logPath: String

    /// Starts `walship` with `arguments`; its stdout and stderr go to `logPath`.
    public init(_ arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: try WalshipBinary.path())
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// An agent outlives its test only by mistake (a thrown error between start and stop): it is
    /// killed, so no agent keeps replicating into a deleted work directory.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// CPU time the agent has used so far (user + system, from `/proc/<pid>/stat`).
    public var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// SIGTERM, then waits (at most `timeout`) and returns the exit status.
    @discardableResult
    public func stop(timeout: TimeInterval = 30) -> Int32 {
        kill(pid, SIGTERM)
        return wait(timeout: timeout)
    }

    /// SIGKILL: the agent dies without any cleanup.
    public func killHard() {
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits for exit (SIGKILL after `timeout`) and returns the status.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { killHard() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The port `--http-addr HOST:0` got, from the log (nil before the agent says it).
    public var httpPort: UInt16? { log.firstMatch(of: /http.port=(\d+)/).flatMap { UInt16($0.1) } }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits (at most `timeout`) until this process says it replicates: its first snapshot or the
    /// generation it continues. Returns whether it did.
    public func waitUntilReplicating(timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let current = log
            if current.contains("snapshot taken") || current.contains("continuing generation") { return true }
            if !process.isRunning { return false }
            usleep(20_000)
        }
        return false
    }

    /// Waits until the log contains `text` (at most `timeout`), after the first line containing
    /// `after` when given; returns whether it appeared.
    public func waitForLog(_ text: String, after: String? = nil, timeout: TimeInterval = 30) -> Bool {
        func found() -> Bool {
            let current = log
            guard let after else { return current.contains(text) }
            guard let start = current.range(of: after) else { return false }
            return current[start.upperBound...].contains(text)
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if found() { return true }
            if !process.isRunning { return found() }
            usleep(20_000)
        }
        return false
    }

    /// Waits until the log contains one of `texts` (at most `timeout`); returns the first of
    /// `texts` it contains, nil when none appeared.
    public func waitForLog(anyOf texts: [String], timeout: TimeInterval = 30) -> String? {
        func found() -> String? {
            let current = log
            return texts.first { current.contains($0) }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = found() { return text }
            if !process.isRunning { return found() }
            usleep(20_000)
        }
        return nil
    }
}
