/// What `walship list` shows, and the status page of a running agent: a replica's generations,
/// their snapshots and restore points, forks, and the restore window, from one inventory.
public struct ReplicaListing: Encodable, Sendable {
    public struct Snapshot: Encodable, Sendable {
        public var key: String
        public var takenAt: String
        public var fromTxid: UInt64
        public var usableTxid: UInt64
        public var bytes: Int64
    }

    public struct Generation: Encodable, Sendable {
        public var id: String
        public var firstTxid: UInt64?
        public var lastTxid: UInt64?
        public var firstTime: String?
        public var lastTime: String?
        public var snapshots: [Snapshot]
        public var segments: Int
        public var bytes: Int64
        /// Txid ranges whose segments are missing (lost objects), as [first, last] pairs.
        public var missingTxids: [[UInt64]]
    }

    /// A generation two agents continued from one state: its segments overlap from `fromTxid`.
    public struct ForkedGeneration: Encodable, Sendable {
        public var id: String
        public var fromTxid: UInt64
    }

    public struct Window: Encodable, Sendable {
        public var earliestTime: String
        public var earliestTxid: UInt64
        public var latestTime: String
        public var latestTxid: UInt64
    }

    public var replica: String
    public var forks: [[String]]
    public var forkedGenerations: [ForkedGeneration]
    public var generations: [Generation]
    public var restoreWindow: Window?
    public var objects: Int
    public var bytes: Int64
    /// With a retention (`--retention`, or the bucket's with `--config`): what it guarantees
    /// and what a prune would delete now.
    public var retention: Retention?

    public struct Retention: Encodable, Sendable {
        public var retentionSeconds: Double
        public var graceSeconds: Double
        public var windowStart: String
        public var prunableObjects: Int
        public var prunableBytes: Int64
        public var nextDue: String?

        public init(
            retentionSeconds: Double, graceSeconds: Double, windowStart: String, prunableObjects: Int,
            prunableBytes: Int64, nextDue: String?
        ) {
            self.retentionSeconds = retentionSeconds
            self.graceSeconds = graceSeconds
            self.windowStart = windowStart
            self.prunableObjects = prunableObjects
            self.prunableBytes = prunableBytes
            self.nextDue = nextDue
        }
    }

    /// What a replica holds: its generations, their snapshots and restore points, forks, and
    /// the restore window.
    public init(location: String, inventory: ReplicaInventory, lineage: Lineage) {
        let planner = RestorePlanner(inventory: inventory)
        var generations: [Generation] = []
        for generation in inventory.generations {
            let span = planner.span(of: generation)
            let snapshots = inventory.snapshots(of: generation).map {
                Snapshot(
                    key: $0.key, takenAt: Timestamp.format(milliseconds: $0.takenMs), fromTxid: $0.fromTxid,
                    usableTxid: $0.usableTxid, bytes: $0.size)
            }
            let segments = inventory.segments(of: generation)
            generations.append(
                Generation(
                    id: "\(generation)", firstTxid: span?.firstTxid, lastTxid: span?.lastTxid,
                    firstTime: span.map { Timestamp.format(milliseconds: $0.firstMs) },
                    lastTime: span.map { Timestamp.format(milliseconds: $0.lastMs) }, snapshots: snapshots,
                    segments: segments.count,
                    bytes: snapshots.reduce(0) { $0 + $1.bytes } + segments.reduce(0) { $0 + $1.size },
                    missingTxids: planner.missingTxids(in: generation).map { [$0.lowerBound, $0.upperBound] }))
        }
        let window = Self.window(planner.spans)
        let forkedGenerations = inventory.generations.compactMap { generation in
            planner.overlap(in: generation).map { ForkedGeneration(id: "\(generation)", fromTxid: $0) }
        }
        replica = location
        forks = lineage.forks.map { $0.map { "\($0)" } }
        self.forkedGenerations = forkedGenerations
        self.generations = generations
        restoreWindow = window
        objects = inventory.snapshots.count + inventory.segments.count
        bytes = inventory.snapshots.reduce(0) { $0 + $1.size } + inventory.segments.reduce(0) { $0 + $1.size }
    }

    /// The restore window of `spans`: from the first restore point to the last.
    public static func window(_ spans: [RestorePlanner.GenerationSpan]) -> Window? {
        guard let first = spans.first, let last = spans.last else { return nil }
        return Window(
            earliestTime: Timestamp.format(milliseconds: first.firstMs), earliestTxid: first.firstTxid,
            latestTime: Timestamp.format(milliseconds: last.lastMs), latestTxid: last.lastTxid)
    }
}
