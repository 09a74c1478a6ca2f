import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// `walship restore REPLICA_URL -o OUT [--at TIME | --txid N]`.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a database from a replica as of a time, a txid, or the latest point.",
        discussion: """
            The result is exactly the database after the last transaction walship observed at or before \
            --at (or after --txid N, or the latest). It is written to a temporary file beside OUT, \
            checked with PRAGMA integrity_check and renamed into place: a failure never leaves a file at OUT.
            """
    )

    @OptionGroup var replicaTarget: ReplicaTarget

    @Option(name: [.customShort("o"), .long], help: "The database file to write.")
    var output: String

    @Option(
        name: .long, parsing: .unconditional,
        help: "Target time: RFC 3339 (2026-11-25T10:31:07.25Z, +01:00 offsets) or relative (-15m).")
    var at: String?

    @Option(name: .long, parsing: .unconditional, help: "Target txid.")
    var txid: String?

    @Option(name: .long, help: "Restore from this generation (required when the replica has a fork).")
    var generation: String?

    @Flag(name: .long, help: "For a target in a gap between generations, restore the last point before it.")
    var nearestBefore = false

    @Option(name: .long, help: "Objects downloaded in parallel.")
    var parallel: Int = 8

    @Flag(name: .long, help: "Replace OUT if it exists (refused while a process has it open).")
    var force = false

    @Flag(name: .long, help: "Exit 0 without doing anything when OUT exists.")
    var ifDbNotExists = false

    @Flag(
        name: .long,
        help: "Exit 0 without doing anything when the replica is empty (a missing bucket or directory is still exit 4)."
    )
    var ifReplicaExists = false

    @Flag(name: .long, help: "Print the plan (objects, bytes, expected txid) and do nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Show no progress.")
    var quiet = false

    @Option(
        name: .long,
        help:
            "The state directory of the agent that will replicate OUT (default as for replicate): restore records there where OUT came from."
    )
    var stateDir: String?

    @Option(name: .long, help: .hidden)
    var encryptionKeyFile: String?

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if at != nil && txid != nil { throw ValidationError("--at and --txid cannot be combined") }
        if parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if encryptionKeyFile != nil {
            throw ValidationError("--encryption-key-file is not supported yet by this walship version")
        }
    }

    func run() async throws {
        Cancellation.installSignalHandlers()
        let logger = try global.bootstrapLogging()
        if ifDbNotExists && FileSystem.exists(output) {
            logger.info("output exists; nothing to do (--if-db-not-exists)", metadata: ["output.path": "\(output)"])
            return
        }
        var target = try parsedTarget()
        let planOptions = try parsedPlanOptions()
        let replica = try replicaTarget.replica(logger: logger)
        // A missing bucket or replica directory is an error even with --if-replica-exists: in an
        // init container, a typo or an unmounted volume must not start the application on an
        // empty database. Only a reachable, empty replica is "nothing to do".
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        if let at { target = .time(try inventory.time(at)) }
        let planner = RestorePlanner(inventory: inventory)
        let plan: RestorePlanner.Plan
        do {
            plan = try planner.plan(target, options: planOptions)
        } catch let error as WalshipError where error.code == .replicaEmpty && ifReplicaExists {
            logger.info("replica is empty; nothing to do (--if-replica-exists)")
            return
        }
        try await refuseForks(plan, planner: planner, replica: replica, checkLineage: planOptions.generation == nil)
        if plan.clampedToLatest {
            logger.warning(
                "the target is after the latest restore point; restoring the latest point",
                metadata: ["restore.txid": "\(plan.lastTxid)"])
        }
        if dryRun {
            printDryRun(plan)
            return
        }
        let report = try await restore(plan, replica: replica, logger: logger)
        if report.verifiedChecksum == nil {
            logger.warning(
                "restored without the database checksum check: this restore point has no recorded checksum (written by walship 0.1, or sealed before the agent knew the generation's page hashes)",
                metadata: ["restore.txid": "\(report.txid)"])
        }
        recordWhereItCameFrom(report, replica: replica, logger: logger)
        logger.info(
            "restore complete",
            metadata: [
                "output.path": "\(output)", "generation": "\(report.generation)", "restore.txid": "\(report.txid)",
                "restore.commit_time": "\(report.commitMs.map { Timestamp.format(milliseconds: $0) } ?? "snapshot")",
                "time.download_seconds": "\(ValueParsing.seconds(report.downloadTime))",
                "time.decode_seconds": "\(ValueParsing.seconds(report.decodeTime))",
                "time.apply_seconds": "\(ValueParsing.seconds(report.applyTime))",
                "time.integrity_check_seconds": "\(ValueParsing.seconds(report.integrityCheckTime))",
                "restore.checksum": "\(report.verifiedChecksum.map { Hex.pad($0, 16) } ?? "none")",
            ])
    }

    /// The target `--at` or `--txid` names (a relative `--at` is resolved once the replica's
    /// newest commit time is known), or the latest point.
    private func parsedTarget() throws -> RestorePlanner.Target {
        if let at { return .time(try Timestamp.parse(at)) }
        guard let txid else { return .latest }
        guard let value = UInt64(txid) else {
            throw WalshipError(.usage, "invalid --txid '\(txid)': a txid is a whole number from 0 up")
        }
        return .txid(value)
    }

    private func parsedPlanOptions() throws -> RestorePlanner.Options {
        var options = RestorePlanner.Options(nearestBefore: nearestBefore)
        if let generation {
            guard let id = GenerationID(hex: generation) else {
                throw WalshipError(.usage, "invalid --generation '\(generation)': expected 16 hex digits")
            }
            options.generation = id
        }
        return options
    }

    /// Exit 11 for a plan that reaches into a fork: a generation two agents continued (its
    /// segments overlap), or, unless a generation was picked, one of two lineages.
    private func refuseForks(
        _ plan: RestorePlanner.Plan, planner: RestorePlanner, replica: Replica, checkLineage: Bool
    ) async throws {
        if let branch = planner.overlap(in: plan.generation),
            plan.segments.contains(where: { $0.lastTxid >= branch })
        {
            throw WalshipError(
                .fork,
                "generation \(plan.generation) was continued by two agents from txid \(branch) (for example a cloned machine or state directory): its segments overlap; restore --txid \(branch - 1) or an earlier point, and give each agent its own state directory"
            )
        }
        guard checkLineage else { return }
        let lineage = try await Lineage.load(store: replica.store, inventory: planner.inventory)
        if let fork = lineage.fork(containing: plan.generation) {
            throw WalshipError(
                .fork,
                "generations \(fork.map { "\($0)" }.joined(separator: ", ")) are separate lineages of one replica (two agents replicating to it?); pick one with --generation"
            )
        }
    }

    private func printDryRun(_ plan: RestorePlanner.Plan) {
        print("generation \(plan.generation)")
        print(
            "snapshot \(plan.snapshot.key) \(plan.snapshot.size) bytes (txid \(plan.snapshot.fromTxid)...\(plan.snapshot.usableTxid))"
        )
        for segment in plan.segments {
            print("segment \(segment.key) \(segment.size) bytes (txid \(segment.firstTxid)...\(segment.lastTxid))")
        }
        let target = plan.untilMs.map {
            "last transaction at or before \(Timestamp.format(milliseconds: $0)), at most txid \(plan.lastTxid)"
        }
        print("objects \(plan.objectCount), bytes \(plan.bytes), target \(target ?? "txid \(plan.lastTxid)")")
    }

    /// Runs the restore with a progress display.
    private func restore(
        _ plan: RestorePlanner.Plan, replica: Replica, logger: Logger
    ) async throws
        -> Restorer.Report
    {
        var options = Restorer.Options()
        options.parallel = parallel
        options.force = force
        options.isCancelled = { Cancellation.isRequested }
        let display = ProgressDisplay(label: "restore", quiet: quiet)
        defer { display.finish() }
        let displayBox = ProgressBox(display)
        return try await Restorer(replica: replica, options: options, logger: logger).restore(plan, to: output) {
            progress in
            displayBox.update(
                fraction: progress.bytesTotal == 0 ? 1 : Double(progress.bytesDone) / Double(progress.bytesTotal),
                detail:
                    "\(progress.objectsDone)/\(progress.objectsTotal) objects, \(ValueParsing.formatBytes(progress.bytesDone))"
            )
        }
    }
}

extension RestoreCommand {
    /// Leaves a `RestoredMarker` in the state directory the agent for OUT will use (`--state-dir`,
    /// the configuration's, or the default one when an agent already has it), so that it starts
    /// a new generation linked to this restore point and may replicate to this replica again
    /// (the replica's identity); a marker that cannot be written is a warning.
    func recordWhereItCameFrom(_ report: Restorer.Report, replica: Replica, logger: Logger) {
        do {
            var option = stateDir
            if option == nil, let config = replicaTarget.config {
                option = try ConfigFile.load(path: config, environment: ProcessInfo.processInfo.environment)
                    .stateDirectory
            }
            let directory = ReplicaFactory.stateDirectory(option: option, databasePath: output)
            // Without a state directory named for it, only one an agent already uses for OUT.
            guard option != nil || FileSystem.isDirectory(directory) else { return }
            try RestoredMarker(
                replica: replica.location, databaseID: report.databaseID.isKnown ? report.databaseID : nil,
                generation: report.generation, txid: report.txid,
                restoredMs: UInt64(Date().timeIntervalSince1970 * 1000)
            ).save(in: directory)
        } catch {
            logger.warning(
                "could not record where the restored database came from; an agent replicating it starts a new generation without that link",
                metadata: ["error": "\(error)"])
        }
    }
}

/// Lets the restore's progress callback (called from its tasks) reach the display.
final class ProgressBox: @unchecked Sendable {  // Progress callbacks arrive one at a time, in order.
    let display: ProgressDisplay
    init(_ display: ProgressDisplay) { self.display = display }
    func update(fraction: Double, detail: String) { display.update(fraction: fraction, detail: detail) }
}
