import Logging
import Synchronization

/// Retention inside the agent: prunes its replica (`RetentionPolicy`, `Pruner`) when a chain
/// becomes deletable, and makes no request before. The agent knows when that is: from its start
/// LIST (the policy's next due time), and from every snapshot it takes (the chain before it goes
/// retention plus grace later). An idle agent takes no snapshot, so it never lists for retention.
/// A prune that fails is logged and counted, never fatal to replication, and tried again later.
final class RetentionTask: Sendable {
    let replica: Replica
    let policy: RetentionPolicy
    let logger: Logger
    let metrics: ReplicationMetrics
    let now: @Sendable () -> UInt64
    /// When the next prune is due (agent clock, Unix ms).
    private let due = Mutex<UInt64?>(nil)
    /// How long after a failed prune the next one is tried.
    static let retryMs: UInt64 = 600_000

    init(
        replica: Replica, policy: RetentionPolicy, logger: Logger, metrics: ReplicationMetrics,
        now: @escaping @Sendable () -> UInt64
    ) {
        self.replica = replica
        self.policy = policy
        self.logger = logger
        self.metrics = metrics
        self.now = now
    }

    private var totalMs: UInt64 {
        UInt64(max(0, policy.retention.milliseconds)) + UInt64(max(0, policy.grace.milliseconds))
    }

    /// Schedules a prune at `ms`; the earliest scheduled time wins.
    func schedule(atMs ms: UInt64?) {
        guard let ms else { return }
        due.withLock { $0 = min($0 ?? ms, ms) }
    }

    var nextDueMs: UInt64? { due.withLock { $0 } }

    /// From the start LIST: a prune now when something is deletable, else when it will be.
    func schedule(from inventory: ReplicaInventory) {
        let plan = policy.plan(inventory: inventory, nowMs: now())
        schedule(atMs: plan.delete.isEmpty ? plan.nextDueMs : now())
    }

    /// A snapshot taken at `takenMs` makes the chain before it deletable retention plus grace later.
    func snapshotTaken(atMs takenMs: UInt64) {
        schedule(atMs: takenMs + totalMs)
    }

    /// Prunes whenever due, until `stop`; looks at the schedule once a second in between (no
    /// request: a snapshot taken meanwhile may have moved it earlier). First asks, once, whether
    /// the bucket keeps old versions of what it deletes.
    func run(until stop: StopSignal) async {
        if await replica.store.keepsOldVersions() == true {
            logger.warning(
                "the bucket keeps old versions of objects (versioning is on): what retention deletes still costs storage until a lifecycle rule expires noncurrent versions",
                metadata: ["replica": "\(replica.location)"])
        }
        while !stop.isStopped {
            let now = now()
            if let next = nextDueMs, next <= now {
                due.withLock { $0 = nil }
                await prune()
                continue
            }
            let wait = nextDueMs.map { min($0 - now, 1000) } ?? 1000
            await stop.sleep(for: .milliseconds(Int64(wait)))
        }
    }

    /// One prune: LIST, plan, delete, LIST again; schedules the next.
    func prune() async {
        do {
            let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
            let lineage = try await Lineage.load(store: replica.store, inventory: inventory)
            let plan = policy.plan(inventory: inventory, forks: lineage.forks, nowMs: now())
            schedule(atMs: plan.nextDueMs)
            if let problem = plan.problem {
                throw WalshipError(.internal, "the retention plan was refused: \(problem)")
            }
            guard !plan.delete.isEmpty else { return }
            let outcome = try await Pruner(replica: replica).execute(plan)
            let kept = Set(outcome.failures.map(\.key) + outcome.persisting)
            metrics.recordDeleted(Set(plan.delete).subtracting(kept))
            metrics.record {
                $0.retentionDeletedObjects += UInt64(outcome.deleted)
                $0.retentionWindowStartMs = plan.windowStartMs
            }
            guard outcome.succeeded else {
                metrics.record { $0.retentionFailures += 1 }
                let keys =
                    outcome.failures.map { "\($0.key) (\($0.code): \($0.message))" }
                    + outcome.persisting.map {
                        "\($0) (still listed after its delete succeeded)"
                    }
                logger.error(
                    "retention could not delete some objects; the next prune tries again",
                    metadata: [
                        "replica": "\(replica.location)", "retention.not_deleted": "\(keys.count)",
                        "retention.keys": "\(keys.prefix(20).joined(separator: ", "))",
                    ])
                schedule(atMs: now() + Self.retryMs)
                return
            }
            logger.info(
                "pruned",
                metadata: [
                    "replica": "\(replica.location)", "retention.objects": "\(outcome.deleted)",
                    "retention.bytes": "\(plan.bytes)",
                    "retention.window_start": "\(Timestamp.format(milliseconds: plan.windowStartMs))",
                ])
        } catch {
            metrics.record { $0.retentionFailures += 1 }
            logger.error(
                "retention prune failed; replication goes on, and the prune is tried again in 10 minutes",
                metadata: ["replica": "\(replica.location)", "error": "\(error)"])
            schedule(atMs: now() + Self.retryMs)
        }
    }
}
