import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// An application process killed inside COMMIT, after writing its frames and before SQLite
/// publishes them: strace holds it at its WAL sync.
enum Victim {
    /// Runs the victim for commit `k`; returns false when strace or the victim did not behave.
    static func killInCommit(database: String, k: Int64, directory: TemporaryDirectory) throws -> Bool {
        guard let strace = CommandRunner.which("strace") else {
            throw WalshipError(.internal, "strace is missing: run scripts/setup")
        }
        // A copy with a unique path, so pkill finds this run's victim only.
        let source = URL(fileURLWithPath: TestScripts.path("victim.py"))
        let script = directory.file("victim-\(UInt32.random(in: 0...UInt32.max)).py")
        try FileManager.default.copyItem(atPath: source.path, toPath: script)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let python = CommandRunner.which("python3") ?? "/usr/bin/python3"
        let victim = Process()
        victim.executableURL = URL(fileURLWithPath: strace)
        victim.arguments = [
            "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e",
            "inject=fsync,fdatasync:delay_enter=30s", python, script, database, String(k),
        ]
        let pipe = Pipe()
        victim.standardOutput = pipe
        victim.standardError = FileHandle.nullDevice
        try victim.run()
        var output = Data()
        let deadline = Date().addingTimeInterval(20)
        while !String(decoding: output, as: UTF8.self).contains("committing") && Date() < deadline {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
        }
        let sawCommit = String(decoding: output, as: UTF8.self).contains("committing")
        // COMMIT writes its frames in well under this, then waits in the delayed sync.
        usleep(400_000)
        _ = try CommandRunner.run("/usr/bin/pkill", ["-9", "-f", script])
        victim.waitUntilExit()
        return sawCommit
    }
}
