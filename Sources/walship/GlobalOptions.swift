import ArgumentParser
import Logging
import WalshipCore

/// Options every subcommand accepts: logging.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("log-level"),
        help: "Log level: trace, debug, info, notice, warning, error, critical (default info).")
    var logLevelOption: String?

    @Option(name: .customLong("log-format"), help: "Log format: text or json (default text).")
    var logFormatOption: String?

    var logLevelGiven: Bool { logLevelOption != nil }
    var logFormatGiven: Bool { logFormatOption != nil }

    var logLevel: String {
        get { logLevelOption ?? "info" }
        set { logLevelOption = newValue }
    }

    var logFormat: String {
        get { logFormatOption ?? "text" }
        set { logFormatOption = newValue }
    }

    /// Installs the stderr log handler once; returns the root logger.
    func bootstrapLogging() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw WalshipError(
                .usage, "invalid --log-level '\(logLevel)': use trace, debug, info, notice, warning, error or critical")
        }
        guard let format = StderrLogHandler.Format(rawValue: logFormat.lowercased()) else {
            throw WalshipError(.usage, "invalid --log-format '\(logFormat)': use text or json")
        }
        LogBootstrap.install(level: level, format: format)
        return Logger(label: "walship")
    }
}

/// LoggingSystem.bootstrap may run only once per process.
enum LogBootstrap {
    nonisolated(unsafe) private static var installed = false  // Set once on the main task before any concurrency.

    static func install(level: Logger.Level, format: StderrLogHandler.Format) {
        guard !installed else { return }
        installed = true
        LoggingSystem.bootstrap { label in
            StderrLogHandler(label: label, format: format, logLevel: level)
        }
    }
}
