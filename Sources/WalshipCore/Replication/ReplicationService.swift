import Logging
import Synchronization

/// An agent's replicators as one service of its `ServiceGroup` (with the metrics server and
/// `--exec`'s application): the group's graceful shutdown is the one way replication is asked to
/// stop (a signal, the application's exit, a failed sibling), and each replicator then ships what
/// is committed and ends. The replicators run as child tasks of this service rather than as
/// services of their own, so that they stop together (a graceful shutdown walks a group's
/// services one at a time), a database that fails stops the others gracefully, and a `--once` run
/// ends when the last one has shipped.
public final class ReplicationService: Service, Sendable {
    public typealias Outcome = Result<DatabaseReplicator.Report, any Error>

    public let replicators: [DatabaseReplicator]
    /// Asked to stop by the group's graceful shutdown (or directly: a second signal asks for an
    /// immediate stop).
    public let stop: StopSignal
    private let once: Bool
    private let snapshotNow: Bool
    private let logger: Logger
    private let outcomes = Mutex<[Outcome]>([])

    public init(
        _ replicators: [DatabaseReplicator], once: Bool, snapshotNow: Bool = false, stop: StopSignal = StopSignal(),
        logger: Logger
    ) {
        self.replicators = replicators
        self.once = once
        self.snapshotNow = snapshotNow
        self.stop = stop
        self.logger = logger
    }

    /// Each replicator's report or error, in the order they ended (empty until `run` returns).
    public var results: [Outcome] { outcomes.withLock { $0 } }

    /// Runs every replicator until it stops (with `once`, until everything is shipped).
    public func run() async {
        let results = await withGracefulShutdownHandler {
            await runAll()
        } onGracefulShutdown: { [stop] in
            stop.stop()
        }
        outcomes.withLock { $0 = results }
    }

    /// A database that fails stops the others gracefully (they ship what is committed); its error
    /// is in `results` once all have stopped. Throwing from the group at once would cancel the
    /// others mid-flight instead.
    private func runAll() async -> [Outcome] {
        await withTaskGroup(of: Outcome.self) { group in
            for replicator in replicators {
                logger.info(
                    "replicating",
                    metadata: [
                        "db.path": "\(replicator.databasePath)", "replica": "\(replicator.replica.location)",
                        "once": "\(once)",
                    ])
                group.addTask { [once, snapshotNow, stop] in
                    do {
                        return .success(try await replicator.run(once: once, snapshotNow: snapshotNow, stop: stop))
                    } catch {
                        stop.stop()
                        return .failure(error)
                    }
                }
            }
            var results: [Outcome] = []
            for await result in group { results.append(result) }
            return results
        }
    }
}

extension MetricsServer: Service {
    /// Serves until the group shuts down (the server is already listening: it starts before the
    /// group, so that a taken address fails the start).
    public func run() async {
        await gracefulShutdown()
        close()
    }
}
