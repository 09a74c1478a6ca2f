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

    /// The restore points one snapshot reaches: from its `usableTxid` to the end of the segments
    /// that follow its `fromTxid` without a hole. A snapshot whose segments do not reach its
    /// `usableTxid` yet (they are still being uploaded, or lost) reaches nothing.
    public struct Reach: Sendable, Equatable {
        public var snapshot: ReplicaLayout.SnapshotEntry
        public var lastTxid: UInt64
        /// Restore-time points end here: the later of the last commit time and the snapshot time.
        public var lastMs: UInt64
    }

    public func reaches(of generation: GenerationID) -> [Reach] {
        let segments = inventory.segments(of: generation)
        return inventory.snapshots(of: generation).compactMap { snapshot in
            var end = snapshot.fromTxid
            var endMs = snapshot.takenMs
            for segment in segments where segment.lastTxid > end {
                guard segment.firstTxid <= end + 1 else { break }
                end = segment.lastTxid
                endMs = max(endMs, segment.lastMs)
            }
            guard end >= snapshot.usableTxid else { return nil }
            return Reach(snapshot: snapshot, lastTxid: end, lastMs: endMs)
        }
    }

    /// The first txid two of a generation's segments both hold, or nil. One agent never ships a
    /// txid twice, so overlapping segments mean two agents continued the generation from one
    /// state (a cloned machine or state volume): a fork inside the generation.
    public func overlap(in generation: GenerationID) -> UInt64? {
        var end: UInt64?
        var first: UInt64?
        for segment in inventory.segments(of: generation).sorted(by: { $0.firstTxid < $1.firstTxid }) {
            if let end, segment.firstTxid <= end { first = min(first ?? segment.firstTxid, segment.firstTxid) }
            end = max(end ?? 0, segment.lastTxid)
        }
        return first
    }

    /// Txid ranges a generation's segment chain lacks between its first and last segment. The
    /// agent uploads in txid order, so a hole means objects were lost (deleted, or lost by the
    /// store); restore points after one are reachable only through a later snapshot.
    public func missingTxids(in generation: GenerationID) -> [ClosedRange<UInt64>] {
        var holes: [ClosedRange<UInt64>] = []
        var end: UInt64?
        for segment in inventory.segments(of: generation).sorted(by: { $0.firstTxid < $1.firstTxid }) {
            if let end, segment.firstTxid > end + 1 { holes.append((end + 1)...(segment.firstTxid - 1)) }
            end = max(end ?? 0, segment.lastTxid)
        }
        return holes
    }

    /// The restore points of a generation: from its first reachable snapshot to the furthest
    /// transaction any snapshot reaches. (Missing segments can leave holes inside the span; a
    /// target in one fails.)
    public func span(of generation: GenerationID) -> GenerationSpan? {
        let reaches = reaches(of: generation)
        guard let first = reaches.min(by: { $0.snapshot.usableTxid < $1.snapshot.usableTxid }),
            let furthest = reaches.map(\.lastTxid).max(), let earliest = reaches.map(\.snapshot.takenMs).min(),
            let latest = reaches.map(\.lastMs).max()
        else { return nil }
        return GenerationSpan(
            generation: generation, firstTxid: first.snapshot.usableTxid, lastTxid: furthest, firstMs: earliest,
            lastMs: latest)
    }

    /// Every generation with restore points, oldest first.
    public var spans: [GenerationSpan] { inventory.generations.compactMap(span(of:)) }

    /// The candidates a target is looked up in (the spans of `options.generation`, or all), and
    /// the restore window for messages.
    private struct Scope {
        var candidates: [GenerationSpan]
        var window: String
        var options: Options
    }

    public func plan(_ target: Target, options: Options = Options()) throws -> Plan {
        let spans = self.spans
        guard let first = spans.first, let last = spans.last else {
            throw WalshipError(.replicaEmpty, "the replica has no restore point (no generation with a snapshot)")
        }
        let candidates = options.generation.map { chosen in spans.filter { $0.generation == chosen } } ?? spans
        guard let newest = candidates.last else {
            let chosen = options.generation.map { "\($0)" } ?? ""
            // A generation with objects but no snapshot (its snapshot lost or pruned) is a
            // target outside the window; one the replica does not hold at all is a typo.
            guard let generation = options.generation, inventory.generations.contains(generation) else {
                throw WalshipError(.usage, "generation '\(chosen)' is not in this replica")
            }
            throw WalshipError(
                .targetOutsideWindow,
                "generation '\(chosen)' has no restore point in this replica (no snapshot of it is stored: lost or pruned)"
            )
        }
        let scope = Scope(
            candidates: candidates,
            window:
                "restore window: txid \(first.firstTxid) at \(Self.format(first.firstMs)) to txid \(last.lastTxid) at \(Self.format(last.lastMs))",
            options: options)
        switch target {
        case .latest: return try planLatest(newest, options: options)
        case .txid(let txid): return try plan(txid: txid, scope)
        case .time(let ms): return try plan(ms: ms, scope)
        }
    }

    /// The furthest point of the newest candidate generation, unless segments after it were lost.
    private func planLatest(_ span: GenerationSpan, options: Options) throws -> Plan {
        // A newer generation without restore points whose segments resume after a hole: its
        // first segments were lost (not still uploading: uploads go in txid order).
        if options.generation == nil, !options.nearestBefore,
            let newest = inventory.generations.last, newest > span.generation,
            let snapshot = inventory.snapshots(of: newest).min(by: { $0.fromTxid < $1.fromTxid }),
            let error = missingSegments(
                after: Reach(snapshot: snapshot, lastTxid: snapshot.fromTxid, lastMs: snapshot.takenMs))
        {
            throw error
        }
        let reach = try furthestReach(of: span)
        if let error = missingSegments(after: reach), !options.nearestBefore { throw error }
        return build(reach: reach, lastTxid: reach.lastTxid, untilMs: nil, clamped: false)
    }

    /// Exactly `txid`: from the newest snapshot at or before it in the generation that holds it.
    private func plan(txid: UInt64, _ scope: Scope) throws -> Plan {
        guard let span = scope.candidates.last(where: { $0.firstTxid <= txid && txid <= $0.lastTxid }) else {
            return try planOutsideSpans(txid: txid, scope)
        }
        let reaches = reaches(of: span.generation)
        let usable = reaches.filter { $0.snapshot.usableTxid <= txid && txid <= $0.lastTxid }
        if let reach = usable.max(by: { $0.snapshot.usableTxid < $1.snapshot.usableTxid }) {
            return build(reach: reach, lastTxid: txid, untilMs: nil, clamped: false)
        }
        // In a hole that a later snapshot bridges.
        let before = reaches.filter { $0.lastTxid < txid }.max { $0.lastTxid < $1.lastTxid }
        if scope.options.nearestBefore, let before {
            return build(reach: before, lastTxid: before.lastTxid, untilMs: nil, clamped: false)
        }
        let low = (before?.lastTxid ?? 0) + 1
        let resume = reaches.map(\.snapshot.usableTxid).filter { $0 > txid }.min() ?? txid + 1
        let nextSegment = inventory.segments(of: span.generation).map(\.firstTxid).filter { $0 > low }.min()
        let high = min(resume, nextSegment ?? resume) - 1
        throw WalshipError(
            .objectCorrupt,
            "txid \(txid) of generation \(span.generation) cannot be reached: the objects holding txids \(low) to \(high) are missing from the replica, and restore points resume at txid \(resume) from a later snapshot"
                + (before.map {
                    "; the last restore point before them is txid \($0.lastTxid): pass --nearest-before to restore it"
                } ?? ""))
    }

    /// A txid no generation's restore points hold: lost segments, a gap between generations, or
    /// outside the window.
    private func planOutsideSpans(txid: UInt64, _ scope: Scope) throws -> Plan {
        // Within a generation's segments but past what its snapshots reach: lost objects, which
        // explain the failure better than a gap between generations would.
        for span in scope.candidates.reversed() {
            let segments = inventory.segments(of: span.generation)
            guard let low = segments.map(\.firstTxid).min(), let high = segments.map(\.lastTxid).max(),
                low <= txid, txid <= high
            else { continue }
            let reach = try furthestReach(of: span)
            if txid > reach.lastTxid, let error = missingSegments(after: reach) {
                if scope.options.nearestBefore {
                    return build(reach: reach, lastTxid: reach.lastTxid, untilMs: nil, clamped: false)
                }
                throw error
            }
        }
        if let before = scope.candidates.last(where: { $0.lastTxid < txid }),
            let after = scope.candidates.first(where: { $0.firstTxid > txid })
        {
            if scope.options.nearestBefore {
                let reach = try furthestReach(of: before)
                return build(reach: reach, lastTxid: reach.lastTxid, untilMs: nil, clamped: false)
            }
            throw gapError(before: before, after: after, what: "txid \(txid)")
        }
        throw WalshipError(.targetOutsideWindow, "txid \(txid) is outside the \(scope.window)")
    }

    /// The last transaction committed at or before `ms`, from the newest snapshot taken at or
    /// before it in the newest generation that has one.
    private func plan(ms: UInt64, _ scope: Scope) throws -> Plan {
        guard let span = scope.candidates.last(where: { $0.firstMs <= ms }) else {
            throw WalshipError(.targetOutsideWindow, "\(Self.format(ms)) is outside the \(scope.window)")
        }
        let reaches = reaches(of: span.generation)
        guard
            let reach = reaches.filter({ $0.snapshot.takenMs <= ms }).max(by: {
                ($0.snapshot.takenMs, $0.snapshot.usableTxid) < ($1.snapshot.takenMs, $1.snapshot.usableTxid)
            })
        else {
            throw WalshipError(.internal, "generation \(span.generation) has no snapshot taken by \(Self.format(ms))")
        }
        guard ms > reach.lastMs else {
            return build(reach: reach, lastTxid: reach.lastTxid, untilMs: ms, clamped: false)
        }
        // Past what this snapshot reaches: the latest point if nothing follows, else a hole
        // (inside the generation) or a gap (before the next generation).
        let laterInGeneration = reaches.contains { $0.lastTxid > reach.lastTxid }
        let next = scope.candidates.first { $0.generation > span.generation }
        if !laterInGeneration, let error = missingSegments(after: reach), !scope.options.nearestBefore {
            throw error
        }
        guard laterInGeneration || next != nil else {
            return build(reach: reach, lastTxid: reach.lastTxid, untilMs: ms, clamped: true)
        }
        if scope.options.nearestBefore {
            return build(reach: reach, lastTxid: reach.lastTxid, untilMs: nil, clamped: false)
        }
        if let next, !laterInGeneration {
            throw gapError(before: span, after: next, what: Self.format(ms))
        }
        throw WalshipError(
            .targetInGap,
            "\(Self.format(ms)) falls in a hole of generation \(span.generation): restore points stop at txid \(reach.lastTxid) at \(Self.format(reach.lastMs)) and resume later (segments missing); pass --nearest-before to restore the earlier point"
        )
    }

    /// A generation's segments after a hole that no snapshot bridges: objects were lost (uploads
    /// go in txid order, so a hole never appears while they are under way), and the restore
    /// points after it cannot be built. Restoring the point before the hole as if it were the
    /// latest would silently drop them.
    private func missingSegments(after reach: Reach) -> WalshipError? {
        let generation = reach.snapshot.generation
        let segments = inventory.segments(of: generation)
        guard let beyond = segments.first(where: { $0.firstTxid > reach.lastTxid + 1 }),
            let lastTxid = segments.map(\.lastTxid).max()
        else { return nil }
        return WalshipError(
            .objectNotFound,
            "generation \(generation) has segments through txid \(lastTxid), but the objects holding txids \(reach.lastTxid + 1) to \(beyond.firstTxid - 1) are missing from the replica; the last restore point before them is txid \(reach.lastTxid) at \(Self.format(reach.lastMs)): pass --txid \(reach.lastTxid) or --nearest-before to restore it"
        )
    }

    /// The reach that goes furthest in a generation with restore points (ties: the newer
    /// snapshot, which has less to apply).
    private func furthestReach(of span: GenerationSpan) throws -> Reach {
        guard
            let reach = reaches(of: span.generation).max(by: {
                ($0.lastTxid, $0.snapshot.usableTxid) < ($1.lastTxid, $1.snapshot.usableTxid)
            })
        else { throw WalshipError(.internal, "generation \(span.generation) has no restore point") }
        return reach
    }

    private func gapError(before: GenerationSpan, after: GenerationSpan, what: String) -> WalshipError {
        WalshipError(
            .targetInGap,
            "\(what) falls in a gap between generation \(before.generation) (last restore point txid \(before.lastTxid) at \(Self.format(before.lastMs))) and generation \(after.generation) (first restore point txid \(after.firstTxid) at \(Self.format(after.firstMs))); pass --nearest-before to restore the earlier point"
        )
    }

    /// The snapshot and the segments from its `fromTxid + 1` through `lastTxid` (the reach
    /// guarantees they are contiguous).
    private func build(reach: Reach, lastTxid: UInt64, untilMs: UInt64?, clamped: Bool) -> Plan {
        let snapshot = reach.snapshot
        var segments: [ReplicaLayout.SegmentEntry] = []
        var end = snapshot.fromTxid
        for segment in inventory.segments(of: snapshot.generation) where segment.lastTxid > end && end < lastTxid {
            guard segment.firstTxid <= end + 1 else { break }
            if let untilMs, segment.firstMs > untilMs, end >= snapshot.usableTxid { break }
            segments.append(segment)
            end = segment.lastTxid
        }
        return Plan(
            generation: snapshot.generation, snapshot: snapshot, segments: segments, lastTxid: lastTxid,
            untilMs: untilMs,
            clampedToLatest: clamped)
    }

    /// RFC 3339 in UTC with milliseconds, for messages.
    public static func format(_ ms: UInt64) -> String {
        Timestamp.format(milliseconds: ms)
    }
}
