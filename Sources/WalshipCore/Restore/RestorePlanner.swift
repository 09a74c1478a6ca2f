/// Decides what a restore downloads and where it stops, from one listing (pure: no I/O).
///
/// A restore point of a generation is reachable from a snapshot S of that generation when
/// S.usableTxid <= target: the snapshot, then every transaction from S.fromTxid + 1 through the
/// target, from the generation's segments (DESIGN.md section 5). A time target picks the newest
/// generation with a snapshot taken at or before it; the precise transaction (the last whose
/// commit time is <= the target) is found in the segment indexes while applying.
public struct RestorePlanner: Sendable {
    public enum Target: Sendable, Equatable {
        case latest
        case txid(UInt64)
        /// Unix milliseconds.
        case time(UInt64)
    }

    public struct Options: Sendable, Equatable {
        public var generation: GenerationID?
        /// Accept the last point before a gap instead of failing with targetInGap.
        public var nearestBefore = false

        public init(generation: GenerationID? = nil, nearestBefore: Bool = false) {
            self.generation = generation
            self.nearestBefore = nearestBefore
        }
    }

    /// What to download and apply.
    public struct Plan: Sendable, Equatable {
        public var generation: GenerationID
        public var snapshot: ReplicaLayout.SnapshotEntry
        public var segments: [ReplicaLayout.SegmentEntry]
        /// Apply transactions through this txid (for a time target: at most this one).
        public var lastTxid: UInt64
        /// For a time target: stop at the last transaction committed at or before this time.
        public var untilMs: UInt64?
        /// The target lay after the newest restore point; the plan restores that point.
        public var clampedToLatest: Bool

        public var bytes: Int64 { snapshot.size + segments.reduce(0) { $0 + $1.size } }
        public var objectCount: Int { 1 + segments.count }
    }

    /// The span of restore points of one generation.
    public struct GenerationSpan: Sendable, Equatable {
        public var generation: GenerationID
        public var firstTxid: UInt64
        public var lastTxid: UInt64
        public var firstMs: UInt64
        public var lastMs: UInt64
    }

    public let inventory: ReplicaInventory

    public init(inventory: ReplicaInventory) {
        self.inventory = inventory
    }

    /// The restore points of a generation: from its first snapshot to its last transaction, if
    /// it has a snapshot and its segments after that snapshot are contiguous.
    public func span(of generation: GenerationID) -> GenerationSpan? {
        guard let first = inventory.snapshots(of: generation).min(by: { $0.usableTxid < $1.usableTxid }) else {
            return nil
        }
        var lastTxid = first.usableTxid
        var lastMs = first.takenMs
        var expected = first.fromTxid + 1
        for segment in inventory.segments(of: generation) where segment.lastTxid > first.fromTxid {
            guard segment.firstTxid <= expected else { break }
            expected = segment.lastTxid + 1
            if segment.lastTxid >= lastTxid {
                lastTxid = segment.lastTxid
                lastMs = max(lastMs, segment.lastMs)
            }
        }
        for snapshot in inventory.snapshots(of: generation) where snapshot.usableTxid > lastTxid {
            lastTxid = snapshot.usableTxid
            lastMs = max(lastMs, snapshot.takenMs)
        }
        return GenerationSpan(
            generation: generation, firstTxid: first.usableTxid, lastTxid: lastTxid, firstMs: first.takenMs,
            lastMs: lastMs)
    }

    /// Every generation with restore points, oldest first.
    public var spans: [GenerationSpan] { inventory.generations.compactMap(span(of:)) }

    /// Generations that name the same predecessor are a fork (two agents on one replica); found
    /// from the headers, so the caller passes each generation's predecessor.
    public static func forks(predecessors: [GenerationID: GenerationID?]) -> [[GenerationID]] {
        var children: [GenerationID: [GenerationID]] = [:]
        for (generation, predecessor) in predecessors {
            if let predecessor { children[predecessor, default: []].append(generation) }
        }
        return children.values.filter { $0.count > 1 }.map { $0.sorted() }
    }

    public func plan(_ target: Target, options: Options = Options()) throws -> Plan {
        let spans = self.spans
        guard !spans.isEmpty else {
            throw WalshipError(.replicaEmpty, "the replica has no restore point (no generation with a snapshot)")
        }
        let candidates = options.generation.map { chosen in spans.filter { $0.generation == chosen } } ?? spans
        guard !candidates.isEmpty else {
            throw WalshipError(.usage, "generation '\(options.generation!)' has no restore point in this replica")
        }
        let window =
            "restore window: txid \(spans.first!.firstTxid) at \(Self.format(spans.first!.firstMs)) to txid \(spans.last!.lastTxid) at \(Self.format(spans.last!.lastMs))"
        switch target {
        case .latest:
            let span = candidates.last!
            return try build(span: span, lastTxid: span.lastTxid, untilMs: nil, clamped: false)
        case .txid(let txid):
            guard let span = candidates.last(where: { $0.firstTxid <= txid && txid <= $0.lastTxid }) else {
                if let gapBefore = candidates.last(where: { $0.lastTxid < txid }),
                    let gapAfter = candidates.first(where: { $0.firstTxid > txid }),
                    gapBefore.generation != gapAfter.generation
                {
                    if options.nearestBefore {
                        return try build(span: gapBefore, lastTxid: gapBefore.lastTxid, untilMs: nil, clamped: false)
                    }
                    throw gapError(before: gapBefore, after: gapAfter, what: "txid \(txid)")
                }
                throw WalshipError(.targetOutsideWindow, "txid \(txid) is outside the \(window)")
            }
            return try build(span: span, lastTxid: txid, untilMs: nil, clamped: false)
        case .time(let ms):
            guard let span = candidates.last(where: { $0.firstMs <= ms }) else {
                throw WalshipError(.targetOutsideWindow, "\(Self.format(ms)) is outside the \(window)")
            }
            if ms > span.lastMs, let next = candidates.first(where: { $0.generation > span.generation }) {
                // After this generation's last point, before the next generation's first one.
                if options.nearestBefore {
                    return try build(span: span, lastTxid: span.lastTxid, untilMs: nil, clamped: false)
                }
                throw gapError(before: span, after: next, what: Self.format(ms))
            }
            return try build(span: span, lastTxid: span.lastTxid, untilMs: ms, clamped: ms > span.lastMs)
        }
    }

    private func gapError(before: GenerationSpan, after: GenerationSpan, what: String) -> WalshipError {
        WalshipError(
            .targetInGap,
            "\(what) falls in a gap between generation \(before.generation) (last restore point txid \(before.lastTxid) at \(Self.format(before.lastMs))) and generation \(after.generation) (first restore point txid \(after.firstTxid) at \(Self.format(after.firstMs))); pass --nearest-before to restore the earlier point"
        )
    }

    private func build(span: GenerationSpan, lastTxid: UInt64, untilMs: UInt64?, clamped: Bool) throws -> Plan {
        let snapshots = inventory.snapshots(of: span.generation).filter {
            $0.usableTxid <= lastTxid && (untilMs == nil || $0.takenMs <= untilMs!)
        }
        guard let snapshot = snapshots.max(by: { ($0.usableTxid, $0.takenMs) < ($1.usableTxid, $1.takenMs) }) else {
            throw WalshipError(.targetOutsideWindow, "no snapshot of generation \(span.generation) precedes the target")
        }
        var segments: [ReplicaLayout.SegmentEntry] = []
        var expected = snapshot.fromTxid + 1
        if lastTxid > snapshot.fromTxid {
            for segment in inventory.segments(of: span.generation)
            where segment.lastTxid >= expected && segment.firstTxid <= lastTxid {
                if let untilMs, segment.firstMs > untilMs { break }
                guard segment.firstTxid <= expected else {
                    throw WalshipError(
                        .objectCorrupt,
                        "generation \(span.generation) has no segment with txid \(expected) (next is '\(segment.key)')")
                }
                segments.append(segment)
                expected = segment.lastTxid + 1
            }
            if untilMs == nil && expected <= lastTxid {
                throw WalshipError(.objectCorrupt, "generation \(span.generation) has no segment with txid \(expected)")
            }
        }
        return Plan(
            generation: span.generation, snapshot: snapshot, segments: segments, lastTxid: lastTxid, untilMs: untilMs,
            clampedToLatest: clamped)
    }

    /// RFC 3339 in UTC with milliseconds, for messages.
    public static func format(_ ms: UInt64) -> String {
        Timestamp.format(milliseconds: ms)
    }
}
