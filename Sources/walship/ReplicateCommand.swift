import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// `walship replicate DB REPLICA_URL`: continuous replication of one database.
struct ReplicateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicate",
        abstract: "Replicate a WAL-mode database continuously to S3 or a local directory.",
        discussion: """
            Ships every committed transaction within about a second (segments), takes a snapshot at \
            the start of each generation and every --snapshot-interval, and keeps the WAL bounded. \
            SIGINT/SIGTERM ship what is committed (for at most --shutdown-timeout) and exit; a second \
            signal exits at once. With --once, ships everything pending (and a snapshot if the \
            generation has none) and exits, for cron.
            """
    )

    @Argument(help: "The database to replicate (in WAL mode).")
    var database: String?

    @Argument(help: "Where to replicate: s3://bucket/prefix or file:///dir.")
    var replicaURL: String?

    @Option(name: .long, help: "Replicate every database of this configuration file (walship.yml).")
    var config: String?

    @Flag(name: .long, help: "Ship what is pending, snapshot if needed, and exit.")
    var once = false

    @Flag(name: .long, help: "Switch the database to WAL mode if it is not (changes the application's journal mode).")
    var setWal = false

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--sync-interval").flagHelp))
    var syncInterval: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--snapshot-interval").flagHelp))
    var snapshotInterval: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--wal-poll-interval").flagHelp))
    var walPollInterval: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--wal-max-frames").flagHelp))
    var walMaxFrames: UInt32?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--compression").flagHelp))
    var compression: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--state-dir").flagHelp))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--spool-max-bytes").flagHelp))
    var spoolMaxBytes: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--shutdown-timeout").flagHelp))
    var shutdownTimeout: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--exec").flagHelp))
    var exec: String?

    @Flag(name: .long, help: ArgumentHelp(Setting.flag("--restore-if-missing").flagHelp))
    var restoreIfMissing = false

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--retention").flagHelp))
    var retention: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--retention-grace").flagHelp))
    var retentionGrace: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--verify-interval").flagHelp))
    var verifyInterval: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--verify-max-bytes").flagHelp))
    var verifyMaxBytes: String?

    @Option(name: .long, help: ArgumentHelp(Setting.flag("--http-addr").flagHelp))
    var httpAddr: String?

    @Option(name: .long, help: .hidden)
    var encryptionKeyFile: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if config != nil {
            if database != nil || replicaURL != nil {
                throw ValidationError("give either --config or DB and REPLICA_URL, not both")
            }
        } else if database == nil || replicaURL == nil {
            throw ValidationError("give DB and REPLICA_URL, or --config walship.yml")
        }
        if once && exec != nil {
            throw ValidationError("--exec runs an application alongside replication; not with --once")
        }
        if let exec, exec.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--exec needs a command")
        }
        // Flags of features that are not built yet are refused, never silently ignored.
        if encryptionKeyFile != nil {
            throw ValidationError("--encryption-key-file is not supported yet by this walship version")
        }
    }

    /// One replicator to run: a database and one of its buckets.
    struct Job {
        var path: String
        var replica: Replica
        var settings: ReplicationSettings
        var stateDirectory: String
        /// The database's own state directory (its lock and identity), shared by its buckets.
        var databaseDirectory: String
    }

    func run() async throws {
        var logging = global
        let configuration = try config.map {
            try ConfigFile.load(path: $0, environment: ProcessInfo.processInfo.environment)
        }
        if let configuration {
            if let level = configuration.logLevel, !global.logLevelGiven { logging.logLevel = level }
            if let format = configuration.logFormat, !global.logFormatGiven { logging.logFormat = format }
        }
        let logger = try logging.bootstrapLogging()
        if let warning = SQLiteLibrary.walResetBugWarning { logger.warning("\(warning)") }
        var jobs = try self.jobs(configuration: configuration, logger: logger)
        let exec = self.exec ?? configuration?.exec
        if once && exec != nil {
            throw WalshipError(.usage, "exec runs an application alongside replication; not with --once")
        }
        if restoreIfMissing || configuration?.restoreIfMissing == true {
            try await SidecarStart.restoreMissing(jobs, logger: logger)
        }
        if setWal {
            for job in jobs where exec == nil || FileSystem.exists(job.path) {
                try WALMode.enable(databaseAt: job.path, logger: logger)
            }
        }
        var application: Application?
        if let exec {
            // The application creates its database if it must; the agent waits for it.
            for index in jobs.indices { jobs[index].settings.waitForDatabase = true }
            application = try Application.start(exec, logger: logger)
        }
        let prepared: Prepared
        do {
            prepared = try prepare(jobs, address: httpAddr ?? configuration?.httpAddress, once: once, logger: logger)
        } catch {
            // The application starts first (it may create its database); a start that fails
            // after it stops it again: walship is its parent.
            if let application {
                application.terminate()
                _ = await application.status()
            }
            throw error
        }
        defer {
            prepared.control?.close()
            prepared.locks.forEach { $0.release() }
            prepared.server?.close()
        }
        // Replication that ends on its own (an error, or --once) stops the application: walship
        // is its parent. The application's exit stops replication.
        let replication = ReplicationService(prepared.replicators, once: once, logger: logger)
        // In start order: a graceful shutdown stops the last first.
        var services: [(name: String, service: any Service)] = []
        if let server = prepared.server { services.append(("metrics server", server)) }
        if let control = prepared.control { services.append(("control sockets", control)) }
        services.append(("replication", replication))
        if let application { services.append(("application", application)) }
        try await Lifecycle.run(
            services, trappingSignals: application == nil, onSignal: { replication.stop.stop() }, logger: logger)
        let results = replication.results
        guard let application else { return try Self.finish(results, logger: logger) }
        // With --exec, the application's status is walship's, unless it exited 0 and what it
        // committed could not all be shipped.
        let status = await application.status()
        do {
            try Self.finish(results, logger: logger)
        } catch {
            if status == 0 { throw error }
            logger.error("\(error)")
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// What replication runs with: a replicator per job, and with an HTTP address each
    /// database's lock and the metrics server.
    private struct Prepared {
        var replicators: [DatabaseReplicator]
        var server: MetricsServer?
        var control: ControlService?
        var locks: [DatabaseLock] = []
    }

    /// The replicators, and for a running agent (or one serving HTTP) each database's lock, the
    /// control sockets and the metrics server, all taken before replication starts: a second
    /// agent exits 3 at once, and a socket is never opened without its database's lock.
    private func prepare(_ jobs: [Job], address: String?, once: Bool, logger: Logger) throws -> Prepared {
        var prepared = Prepared(
            replicators: jobs.map { job in
                DatabaseReplicator(
                    databasePath: job.path, replica: job.replica, stateDirectory: job.stateDirectory,
                    databaseDirectory: job.databaseDirectory, settings: job.settings, logger: logger)
            })
        for replicator in prepared.replicators {
            if let error = replicator.missingReplicaDirectory() { throw error }
        }
        guard address != nil || !once else { return prepared }
        do {
            // Each database's lock first: a second agent exits 3 ("another agent"), not 2 for
            // the address its twin already listens on. The replicators share these locks.
            for job in jobs {
                prepared.locks.append(
                    try DatabaseLock.acquire(directory: job.databaseDirectory, databasePath: job.path))
            }
            if !once { prepared.control = ControlService(prepared.replicators, logger: logger) }
            if let address {
                prepared.server = try Self.startMetricsServer(
                    address: address, replicators: prepared.replicators, logger: logger)
            }
        } catch {
            prepared.control?.close()
            prepared.locks.forEach { $0.release() }
            throw error
        }
        return prepared
    }

    /// One job per database and bucket (a database with several buckets has a position,
    /// generations and a spool per bucket), from the configuration file or the command line.
    private func jobs(configuration: WalshipConfiguration?, logger: Logger) throws -> [Job] {
        var jobs: [Job] = []
        if let configuration {
            for database in configuration.databases {
                for name in database.bucketNames {
                    let bucket = try configuration.bucket(for: database, named: name)
                    var settings = database.settings(forBucket: name)
                    try apply(to: &settings)
                    let option = stateDir ?? configuration.stateDirectory
                    jobs.append(
                        Job(
                            path: database.path,
                            replica: try ReplicaFactory.replica(bucket: bucket, prefix: database.prefix),
                            settings: settings,
                            stateDirectory: ReplicaFactory.stateDirectory(
                                option: option, database: database, bucket: bucket),
                            databaseDirectory: ReplicaFactory.stateDirectory(
                                option: option, databasePath: database.path)))
                }
            }
        } else if let database, let replicaURL {
            var settings = ReplicationSettings()
            try apply(to: &settings)
            let state = ReplicaFactory.stateDirectory(option: stateDir, databasePath: database)
            jobs.append(
                Job(
                    path: database, replica: try ReplicaFactory.replica(url: replicaURL, logger: logger),
                    settings: settings, stateDirectory: state, databaseDirectory: state))
        }
        return jobs
    }

    private static func startMetricsServer(
        address: String, replicators: [DatabaseReplicator], logger: Logger
    ) throws -> MetricsServer {
        for replicator in replicators { replicator.metrics.keepInventory() }
        let sources = replicators.map { replicator in
            MetricsExposition.Source(
                database: replicator.databasePath, replica: replicator.replica.location,
                spoolMaxBytes: replicator.settings.spoolMaxBytes, metrics: replicator.metrics)
        }
        // Ready once every replicator has started (after --restore-if-missing, which runs
        // before the server). Replication lag is a metric, never a readiness condition.
        let ready: @Sendable () -> Bool = { replicators.allSatisfy { $0.metrics.started } }
        let status: @Sendable (String?) -> StatusReport = { at in
            StatusReport.make(
                sources, version: WalshipVersion.current, sqliteVersion: SQLiteLibrary.version, ready: ready(), at: at)
        }
        return try MetricsServer.start(address: address, logger: logger, ready: ready, status: status) {
            MetricsExposition.render(sources, version: WalshipVersion.current, sqliteVersion: SQLiteLibrary.version)
        }
    }

    /// Logs each replicator's end; throws the first failure, or an error when a generation has
    /// no snapshot yet or objects are left in a spool (exit 4: not everything is restorable).
    private static func finish(_ results: [Result<DatabaseReplicator.Report, any Error>], logger: Logger) throws {
        let reports = results.compactMap { try? $0.get() }
        var pending = 0
        for report in reports {
            pending += report.pendingObjects
            logger.info(
                "replication stopped",
                metadata: [
                    "transactions": "\(report.transactionsShipped)", "txid": "\(report.lastTxid)",
                    "generation": "\(report.generation.map { "\($0)" } ?? "-")",
                    "spool.objects": "\(report.pendingObjects)",
                ])
        }
        for case .failure(let error) in results { throw error }
        if reports.contains(where: \.stoppedWhilePaused) {
            throw WalshipError(
                .storeUnavailable,
                "stopped while replication was paused (no space for the spool, a full spool, or a database SQLite could not read; see the log above): commits made since then are not shipped until the next start"
            )
        }
        if let report = reports.first(where: { !$0.generationHasSnapshot }) {
            throw WalshipError(
                .storeUnavailable,
                "stopped before generation \(report.generation.map { "\($0)" } ?? "-") had its first snapshot: its commits are not restorable until the next start takes one"
            )
        }
        if pending > 0 {
            throw WalshipError(
                .storeUnavailable,
                "stopped with \(pending) objects not uploaded; they are kept in the spool and go up at the next start")
        }
    }

    /// Flags override the configuration file.
    func apply(to settings: inout ReplicationSettings) throws {
        let environment = ProcessInfo.processInfo.environment
        if environment["WALSHIP_TEST_WITHOUT_REPLICA_LOCK"] == "1" {
            settings.replicaLock = false
        }
        if let pause = environment["WALSHIP_TEST_PAUSE_AFTER_CONTENT_CHECK"] {
            settings.pauseAfterContentCheck = try ValueParsing.duration(
                pause, name: "WALSHIP_TEST_PAUSE_AFTER_CONTENT_CHECK")
        }
        if let retention {
            settings.retention = retention == "none" ? nil : try ValueParsing.duration(retention, name: "--retention")
        }
        if let retentionGrace {
            settings.retentionGrace = try ValueParsing.duration(retentionGrace, name: "--retention-grace")
        }
        if let verifyInterval {
            settings.verifyInterval =
                verifyInterval == "off" ? nil : try ValueParsing.duration(verifyInterval, name: "--verify-interval")
            if let interval = settings.verifyInterval, interval <= .zero {
                throw WalshipError(
                    .usage, "invalid --verify-interval '\(verifyInterval)': use a positive duration or off")
            }
        }
        if let verifyMaxBytes {
            settings.verifyMaxBytes = try ValueParsing.byteSize(verifyMaxBytes, name: "--verify-max-bytes")
        }
        if let syncInterval { settings.syncInterval = try ValueParsing.duration(syncInterval, name: "--sync-interval") }
        if let snapshotInterval {
            settings.snapshotInterval = try ValueParsing.duration(snapshotInterval, name: "--snapshot-interval")
        }
        if let walPollInterval {
            settings.walPollInterval = try ValueParsing.duration(walPollInterval, name: "--wal-poll-interval")
        }
        if let walMaxFrames { settings.walMaxFrames = walMaxFrames }
        if let compression {
            guard let codec = CompressionCodec(name: compression) else {
                throw WalshipError(.usage, "invalid --compression '\(compression)': use zstd, gzip or none")
            }
            settings.compression = codec
        }
        if let spoolMaxBytes {
            settings.spoolMaxBytes = try ValueParsing.byteSize(spoolMaxBytes, name: "--spool-max-bytes")
        }
        if let shutdownTimeout {
            settings.shutdownTimeout = try ValueParsing.duration(shutdownTimeout, name: "--shutdown-timeout")
        }
    }
}
