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
            running, replicates DB once to REPLICA_URL (or its bucket from --config) with a snapshot.
            """
    )

    @Argument(help: "The database (with --config: its path or name in the file).")
    var database: String

    @Argument(help: "Where it replicates (s3://bucket/prefix or file:///dir); needed only when no agent runs.")
    var replicaURL: String?

    @Option(name: .long, help: "The configuration file (walship.yml) that names the database.")
    var config: String?

    @Option(name: .long, help: "Local state directory, as given to replicate (default $XDG_STATE_HOME/walship).")
    var stateDir: String?

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let configuration = try config.map {
            try ConfigFile.load(path: $0, environment: ProcessInfo.processInfo.environment)
        }
        let entry = try configuration?.database(named: database)
        let path = entry?.path ?? database
        let stateDirectory = ReplicaFactory.stateDirectory(
            option: stateDir ?? configuration?.stateDirectory, databasePath: path)
        if let reply = try ControlSocket.request("snapshot", at: stateDirectory + "/control.sock") {
            guard reply.hasPrefix("ok") else {
                throw WalshipError(
                    .internal, "the running agent could not take the snapshot: \(reply.dropFirst("error ".count))")
            }
            print("snapshot uploaded by the running agent: \(reply.dropFirst("ok ".count))")
            return
        }
        let replica: Replica
        var settings = ReplicationSettings()
        if let configuration, let entry {
            settings = entry.settings
            replica = try ReplicaFactory.replica(
                bucket: try configuration.bucket(for: entry), prefix: entry.prefix, create: true)
        } else if let replicaURL {
            replica = try ReplicaFactory.replica(url: replicaURL, create: true, logger: logger)
        } else {
            throw WalshipError(
                .usage,
                "no agent is running for '\(path)'; give REPLICA_URL (or --config) to replicate it once with a snapshot"
            )
        }
        logger.info("no agent is running; replicating once with a snapshot", metadata: ["db.path": "\(path)"])
        let stop = SignalStop.install()
        let report = try await DatabaseReplicator(
            databasePath: path, replica: replica, stateDirectory: stateDirectory, settings: settings, logger: logger
        ).run(once: true, snapshotNow: true, stop: stop)
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
