import Foundation
import WalshipCore

/// Runs a program to completion and captures its exit status, standard output and standard error
/// (through temporary files, so a chatty program cannot fill a pipe and hang).
public enum CommandRunner {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `executable` with `arguments`; `environment` entries are added to this process's.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        currentDirectory: String? = nil, stdin: String? = nil
    ) throws -> Output {
        let scratch = try TemporaryDirectory(prefix: "walship-run")
        defer { scratch.remove() }
        let outPath = scratch.file("stdout")
        let errPath = scratch.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let stdin {
            let inPath = scratch.file("stdin")
            _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Output(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Finds a program on PATH, or nil.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// The built `walship` executable, for tests that drive it like a user.
public enum WalshipBinary {
    /// `$WALSHIP_BINARY`, else the `walship` beside the running test bundle (SwiftPM puts both in
    /// the same build directory).
    public static func path() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["WALSHIP_BINARY"] { return explicit }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("walship").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw WalshipError(
            .internal,
            "the walship executable was not found beside '\(CommandLine.arguments[0])'; run 'swift build' first or set WALSHIP_BINARY"
        )
    }

    /// Runs `walship` with `arguments`.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandRunner.Output {
        try CommandRunner.run(try path(), arguments, environment: environment)
    }
}
