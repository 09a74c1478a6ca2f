import ArgumentParser
import Logging
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// The `walship` command: parses the command line, bootstraps logging, runs one subcommand and
/// turns its outcome into an exit status (0 ok; each failure class has its own, see
/// docs/operations.md).
@main
struct Walship: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walship",
        abstract: "Continuous, point-in-time backup of SQLite databases in WAL mode.",
        version: WalshipVersion.current,
        subcommands: [
            ReplicateCommand.self, RestoreCommand.self, ListCommand.self, PruneCommand.self, SnapshotCommand.self,
            BackupCommand.self, VerifyCommand.self,
            VersionCommand.self,
        ]
    )

    static func main() async {
        // A parent may start us with signals blocked (Foundation's Process does); walship's
        // graceful shutdown needs SIGINT and SIGTERM delivered.
        EarlySignal.install()
        var empty = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, nil)
        let status = await runMain(arguments: Array(CommandLine.arguments.dropFirst()))
        Glibc.exit(status)
    }

    /// Parses and runs one command line; returns the exit status.
    static func runMain(arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if !(command is ReplicateCommand || command is BackupCommand || command is RestoreCommand) {
                EarlySignal.restoreDefault()
            }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as WalshipError {
            printError("walship: \(error)")
            return error.code.exitCode
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                return 0
            }
            if !message.isEmpty { printError(message) }
            // ArgumentParser reports usage errors as 64 (EX_USAGE); walship's contract is 2.
            return code == .validationFailure ? WalshipError.Code.usage.exitCode : code.rawValue
        }
    }
}

/// Writes a line to standard error (logs and errors never go to standard output).
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    writeStandardError(line)
}

/// Writes raw text to standard error with write(2) (no shared C `FILE` state).
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { raw in
            write(STDERR_FILENO, raw.baseAddress! + offset, raw.count - offset)
        }
        if written <= 0 { return }
        offset += written
    }
}
