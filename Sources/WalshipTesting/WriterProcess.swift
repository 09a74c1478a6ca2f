import Foundation
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// An application writing to a `LedgerDatabase` from its own process (Python's sqlite3, the same
/// libsqlite3), so its locks and file descriptors are truly another process's.
public final class WriterProcess: @unchecked Sendable {  // Used from the test's thread only.
    let process = Process()
    let outputPath: String

    public init(
        script: String, database: String, intervalMilliseconds: Double = 10, payloadBytes: Int = 200,
        seconds: Double? = nil, latencyFile: String? = nil
    ) throws {
        outputPath = database + ".writer-output"
        process.executableURL = URL(fileURLWithPath: CommandRunner.which("python3") ?? "/usr/bin/python3")
        var arguments = [
            script, database, "--interval-ms", String(intervalMilliseconds), "--payload", String(payloadBytes),
        ]
        if let seconds { arguments += ["--seconds", String(seconds)] }
        if let latencyFile { arguments += ["--latency-file", latencyFile] }
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    /// Stops the writer (SIGTERM) and returns its commit count.
    public func stop() throws -> Int {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        return try wait()
    }

    /// Waits for the writer to finish and returns its commit count.
    public func wait() throws -> Int {
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0, let count = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw WalshipError(.internal, "writer process failed: \(text.suffix(500))")
        }
        return count
    }

    /// Kills the writer with SIGKILL (no cleanup, possibly mid-commit).
    public func killHard() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
