import Synchronization

/// The figures one replicator (one database, one bucket) exports at `/metrics` (`--http-addr`;
/// docs/operations.md lists them). The WAL loop, the uploader, the snapshotter and the
/// checkpointer record into it from their threads; a scrape copies it.
public final class ReplicationMetrics: Sendable {
    public struct Values: Sendable {
        /// Start-up is done: the generation continued or started (after its first catch-up).
        public var started = false
        /// The newest transaction read from the WAL, and its observed commit time.
        public var observedTxid: UInt64 = 0
        public var observedCommitMs: UInt64 = 0
        /// The newest transaction whose segment the store has confirmed, and its commit time.
        public var shippedTxid: UInt64 = 0
        public var shippedCommitMs: UInt64 = 0
        /// Replication lag counts from here: the observed commit time of the first poll that read
        /// transactions while everything before them was shipped, or, after an upload that left
        /// transactions pending, the newest shipped commit time (so the lag is at most one
        /// commit-to-commit gap too high). nil while everything read is in the store.
        public var pendingSinceMs: UInt64?
        public var transactionsObserved: UInt64 = 0
        public var generation: GenerationID?
        public var generationStartedMs: UInt64 = 0
        public var generationsStarted: [ObjectHeader.GenerationReason: UInt64] = [:]
        public var segmentsUploaded: UInt64 = 0
        public var snapshotsUploaded: UInt64 = 0
        public var bytesUploaded: UInt64 = 0
        public var uploadFailures: UInt64 = 0
        /// Spooled objects that could not be uploaded because their key held another object (or
        /// the spool file was unreadable); each ended its generation.
        public var objectConflicts: UInt64 = 0
        public var snapshotFailures: UInt64 = 0
        /// When the newest snapshot in the store was taken (0: none uploaded by this process).
        public var lastSnapshotMs: UInt64 = 0
        public var spoolBytes: Int64 = 0
        public var spoolObjects: Int = 0
        public var spoolFullEvents: UInt64 = 0
        /// Frames in the published WAL at the last poll, and the database's page size.
        public var walFrames: UInt32 = 0
        public var pageSize: Int = 4096
        public var checkpointRestarts: UInt64 = 0
        public var checkpointBusy: UInt64 = 0
        /// Total and longest time the agent's RESTART checkpoints held the write lock.
        public var writeLockSeconds: Double = 0
        public var longestWriteLockSeconds: Double = 0
        /// Steps of the wall clock the commit clock saw: backward ones (not followed) and
        /// forward ones (followed).
        public var clockBackwardSteps: UInt64 = 0
        public var clockForwardSteps: UInt64 = 0
        /// Objects retention deleted (confirmed by a second LIST), prunes that failed in part or
        /// whole, and the start of the window the last prune guaranteed (Unix ms, 0 before one).
        public var retentionDeletedObjects: UInt64 = 0
        public var retentionFailures: UInt64 = 0
        public var retentionWindowStartMs: UInt64 = 0
        /// When the store last confirmed an upload (Unix ms, 0 before one).
        public var lastUploadMs: UInt64 = 0
        /// Scheduled verifies run and failed, and when the last one passed (Unix ms, 0: none).
        public var verifyRuns: UInt64 = 0
        public var verifyFailures: UInt64 = 0
        public var lastVerifySuccessMs: UInt64 = 0
    }

    private let values = Mutex(Values())
    private let spool = Mutex<Spool?>(nil)
    private let clock = Mutex<CommitClock?>(nil)
    /// What the replica holds as this agent knows it without asking the store: its start LIST,
    /// every object it uploaded since, less what its retention deleted (the status page's data,
    /// kept only when `keepInventory()` was called: a replica of 72 hours of 1 s segments is a
    /// quarter million entries, tens of MB).
    private let stored = Mutex<(layout: ReplicaLayout, inventory: ReplicaInventory)?>(nil)
    private let keepsInventory = Mutex(false)

    public init() {}

    /// The figures now; the spool's are read from the spool itself.
    public var current: Values {
        var copy = values.withLock { $0 }
        if let spool = spool.withLock({ $0 }) {
            let pending = spool.pending
            copy.spoolObjects = pending.count
            copy.spoolBytes = pending.reduce(0) { $0 + $1.size }
        }
        if let clock = clock.withLock({ $0 }) {
            (copy.clockBackwardSteps, copy.clockForwardSteps) = clock.steps
        }
        return copy
    }

    func attach(_ clock: CommitClock) {
        self.clock.withLock { $0 = clock }
    }

    func attach(_ spool: Spool) {
        self.spool.withLock { $0 = spool }
    }

    private let lastVerifyResult = Mutex<VerifyResult?>(nil)

    /// The last scheduled verify (nil: none yet, or `verify-interval` is off).
    public var lastVerify: VerifyResult? { lastVerifyResult.withLock { $0 } }

    func recordVerify(_ result: VerifyResult) {
        lastVerifyResult.withLock { $0 = result }
    }

    /// The replica's objects as the agent knows them (nil before its start LIST).
    public var inventory: ReplicaInventory? { stored.withLock { $0?.inventory } }

    /// Keeps the replica's inventory from the start LIST on (the status page asks for it).
    public func keepInventory() {
        keepsInventory.withLock { $0 = true }
    }

    func attach(_ inventory: ReplicaInventory, layout: ReplicaLayout) {
        guard keepsInventory.withLock({ $0 }) else { return }
        stored.withLock { $0 = (layout, inventory) }
    }

    /// An object the store confirmed (or already held). New objects sort last as a rule, so
    /// this is an append; an object already known is not added again.
    func recordStored(key: String, size: Int64) {
        stored.withLock { stored in
            guard let layout = stored?.layout else { return }
            switch layout.parse(key: key, size: size) {
            case .snapshot(let entry)?:
                Self.insert(entry, into: &stored!.inventory.snapshots) {
                    ($0.generation, $0.usableTxid, $0.takenMs) < ($1.generation, $1.usableTxid, $1.takenMs)
                }
            case .segment(let entry)?:
                Self.insert(entry, into: &stored!.inventory.segments) {
                    ($0.generation, $0.firstTxid) < ($1.generation, $1.firstTxid)
                }
            case nil:
                return
            }
        }
    }

    /// Inserts `entry` into `sorted` where `less` puts it, unless an entry with its key is there.
    private static func insert<Entry: Equatable>(
        _ entry: Entry, into sorted: inout [Entry], by less: (Entry, Entry) -> Bool
    ) {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if less(entry, sorted[middle]) { high = middle } else { low = middle + 1 }
        }
        // Entries that sort equal to it sit just before `low`.
        var index = low - 1
        while index >= 0 && !less(sorted[index], entry) {
            if sorted[index] == entry { return }
            index -= 1
        }
        sorted.insert(entry, at: low)
    }

    /// Objects retention confirmed gone.
    func recordDeleted(_ keys: Set<String>) {
        stored.withLock { stored in
            stored?.inventory.snapshots.removeAll { keys.contains($0.key) }
            stored?.inventory.segments.removeAll { keys.contains($0.key) }
        }
    }

    /// Whether start-up is done (cheaper than `current`: no spool listing).
    public var started: Bool { values.withLock { $0.started } }

    func record(_ change: (inout Values) -> Void) {
        values.withLock { change(&$0) }
    }
}
