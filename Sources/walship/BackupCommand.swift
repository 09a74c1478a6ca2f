import ArgumentParser
import Dispatch
import Logging
import WalshipCore

/// `walship backup SRC DEST`: one-shot online backup of a live database to a local file.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a live SQLite database to a local file, verified and written atomically.",
        discussion: """
            Copies SRC with the SQLite online backup API under one read transaction, so the copy is \
            the database at a single transaction boundary even while the application writes. The copy \
            goes to a temporary file beside DEST, is fsynced and checked with PRAGMA integrity_check, \
            and is then renamed into place: DEST never holds a partial file.
            """
    )

    @Argument(help: "The database to back up.")
    var source: String

    @Argument(help: "The backup file to write.")
    var destination: String

    @Option(name: .long, help: "Pages copied per backup step.")
    var stepPages: Int32 = 1024

    @Option(name: .long, help: "Pause between backup steps, like 10ms, to leave I/O to the application.")
    var sleep: String = "0s"

    @Flag(name: .long, help: "Write a gzip-compressed backup (readable with gzip -d).")
    var gzip = false

    @Flag(name: .long, help: "Write a zstd-compressed backup (readable with zstd -d).")
    var zstd = false

    @Flag(name: .long, help: "Replace DEST if it exists (refused while another process has it open).")
    var force = false

    @Flag(name: .long, help: "Show no progress.")
    var quiet = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if stepPages < 1 { throw ValidationError("--step-pages must be at least 1") }
        if gzip && zstd { throw ValidationError("--gzip and --zstd cannot be combined") }
    }

    func run() throws {
        let logger = try global.bootstrapLogging()
        if let warning = SQLiteLibrary.walResetBugWarning {
            logger.warning("\(warning)")
        }
        var options = FileBackup.Options()
        options.stepPages = stepPages
        options.sleepBetweenSteps = try ValueParsing.duration(sleep, name: "--sleep")
        options.codec = gzip ? .gzip : (zstd ? .zstd : .none)
        options.force = force
        if options.codec != .none,
            [".db", ".sqlite", ".sqlite3", ".db3"].contains(where: { destination.lowercased().hasSuffix($0) })
        {
            let suffix = options.codec == .gzip ? ".gz" : ".zst"
            logger.warning(
                "the destination's name says database, but it will hold \(options.codec == .gzip ? "gzip" : "zstd") data: name it '\(destination)\(suffix)' (decompress with \(options.codec == .gzip ? "gzip -d" : "zstd -d") to get the database)",
                metadata: ["output.path": "\(destination)"])
        }
        Cancellation.installSignalHandlers()

        let display = ProgressDisplay(label: "backup", quiet: quiet)
        let report: FileBackup.Report
        do {
            report = try FileBackup(options: options, logger: logger).run(
                source: source, destination: destination,
                isCancelled: { Cancellation.isRequested },
                progress: { progress in
                    display.update(
                        fraction: progress.fraction,
                        detail: "\(progress.copiedPages)/\(progress.totalPages) pages")
                })
        } catch {
            display.finish()
            throw error
        }
        display.finish()
        logger.info(
            "backup complete",
            metadata: [
                "db.path": "\(source)", "output.path": "\(destination)",
                "db.pages": "\(report.pageCount)", "db.page_size": "\(report.pageSize)",
                "output.bytes": "\(report.outputBytes)",
                "time.copy_seconds": "\(ValueParsing.seconds(report.copyTime))",
                "time.fsync_seconds": "\(ValueParsing.seconds(report.fsyncTime))",
                "time.integrity_check_seconds": "\(ValueParsing.seconds(report.integrityCheckTime))",
                "time.compress_seconds": "\(ValueParsing.seconds(report.compressTime))",
            ])
    }
}
