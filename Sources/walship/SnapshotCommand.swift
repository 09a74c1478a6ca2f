import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// `walship snapshot DB [REPLICA_URL]`: take and upload a snapshot now.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take and upload a snapshot now.",
        discussion: """
            Asks the agent replicating DB for a snapshot through its control socket \
            (<state-dir>/<db>/control.sock) and waits until the snapshot is uploaded. With no agent \
            running, replicates DB once to REPLICA_URL (or its bucket from --config) with a snapshot. \
            With --config, a database with several buckets gets a snapshot in each (or in --bucket).
            """
    )

    @Argument(help: "The database (with --config: its path or name in the file).")
    var database: String

    @Argument(help: "Where it replicates (s3://bucket/prefix or file:///dir); needed only when no agent runs.")
    var replicaURL: String?

    @Option(name: .long, help: "The configuration file (walship.yml) that names the database.")
    var config: String?

    @Option(name: .long, help: "With --config: only this bucket of the database (default: every one).")
    var bucket: String?

    @Option(name: .long, help: "Local state directory, as given to replicate (default $XDG_STATE_HOME/walship).")
    var stateDir: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = try global.bootstrapLogging()
        if bucket != nil && config == nil { throw WalshipError(.usage, "--bucket needs --config") }
        guard let config else {
            let stateDirectory = ReplicaFactory.stateDirectory(option: stateDir, databasePath: database)
            let replica = try replicaURL.map { try ReplicaFactory.replica(url: $0, logger: logger) }
            try await snapshot(
                path: database, replica: replica, settings: ReplicationSettings(), stateDirectory: stateDirectory,
                databaseDirectory: stateDirectory, logger: logger)
            return
        }
        let configuration = try ConfigFile.load(path: config, environment: ProcessInfo.processInfo.environment)
        let entry = try configuration.database(named: database)
        for name in bucket.map({ [$0] }) ?? entry.bucketNames {
            let chosen = try configuration.bucket(for: entry, named: name)
            let option = stateDir ?? configuration.stateDirectory
            try await snapshot(
                path: entry.path,
                replica: try ReplicaFactory.replica(bucket: chosen, prefix: entry.prefix),
                settings: entry.settings(forBucket: name),
                stateDirectory: ReplicaFactory.stateDirectory(option: option, database: entry, bucket: chosen),
                databaseDirectory: ReplicaFactory.stateDirectory(option: option, databasePath: entry.path),
                logger: logger)
        }
    }

    /// Asks the agent whose state directory is `stateDirectory`; with none running, replicates
    /// once to `replica` with a snapshot.
    func snapshot(
        path: String, replica: Replica?, settings: ReplicationSettings, stateDirectory: String,
        databaseDirectory: String, logger: Logger
    ) async throws {
        if let reply = try ControlSocket.request("snapshot", at: stateDirectory + "/control.sock") {
            if reply.hasPrefix("unavailable ") {
                throw WalshipError(
                    .databaseUnusable,
                    "the running agent cannot take a snapshot now: \(reply.dropFirst("unavailable ".count))")
            }
            guard reply.hasPrefix("ok") else {
                throw WalshipError(
                    .internal, "the running agent could not take the snapshot: \(reply.dropFirst("error ".count))")
            }
            print("snapshot uploaded by the running agent: \(reply.dropFirst("ok ".count))")
            return
        }
        guard let replica else {
            throw WalshipError(
                .usage,
                "no agent is running for '\(path)'; give REPLICA_URL (or --config) to replicate it once with a snapshot"
            )
        }
        logger.info(
            "no agent is running; replicating once with a snapshot",
            metadata: ["db.path": "\(path)", "replica": "\(replica.location)"])
        let replication = ReplicationService(
            [
                DatabaseReplicator(
                    databasePath: path, replica: replica, stateDirectory: stateDirectory,
                    databaseDirectory: databaseDirectory, settings: settings, logger: logger)
            ], once: true, snapshotNow: true, logger: logger)
        try await Lifecycle.run(
            [("replication", replication)], trappingSignals: true,
            onSignal: { replication.stop.stop() }, logger: logger)
        guard let outcome = replication.results.first else {
            throw WalshipError(.internal, "the snapshot run did not end")
        }
        let report = try outcome.get()
        guard report.pendingObjects == 0, let header = report.lastSnapshot else {
            throw WalshipError(
                .storeUnavailable,
                "stopped with \(report.pendingObjects) objects not uploaded; they go up at the next start")
        }
        print(
            "snapshot uploaded: generation=\(GenerationID(header.generation)) txid=\(header.lastTxid) taken_at=\(Timestamp.format(milliseconds: header.firstMs)) bytes=\(header.payloadSize)"
        )
    }
}
