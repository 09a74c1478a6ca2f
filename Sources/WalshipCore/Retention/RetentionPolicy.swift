/// Which objects a replica no longer needs (DESIGN.md section 6): every moment from
/// `now - retention - grace` to now must restore exactly as it does before the prune. Pure: one
/// inventory and the forks found in it in, a plan out.
///
/// The rules, per generation, with `cutoff = now - retention - grace`:
/// - A generation is deleted whole only when it ended by the cutoff and a later generation (not
///   one of its fork siblings) has its first restore point by the cutoff: no time in the window
///   then restores from it. The newest generation is never deleted.
/// - In a generation the window reaches, the anchor is the snapshot a restore at the cutoff
///   starts from (the newest reachable snapshot taken by then). Snapshots older than the anchor
///   go, and segments that end at or before the anchor's `fromTxid`; the anchor, everything
///   after it and every segment with `lastTxid > fromTxid` of the anchor stay.
/// - The generations of a fork (separate lineages, or a generation two agents continued) are
///   never pruned inside; they are deleted whole, all together, once every one of them meets
///   the first rule.
/// - Objects the layout does not recognize are not in the inventory, so never touched.
///
/// As a last guard the plan is checked against the restore planner: restores at the cutoff, at
/// each restore point's time in the window and of the latest point must plan the same objects
/// with and without the deleted ones; if any differs, nothing is deleted and `problem` says why.
public struct RetentionPolicy: Sendable {
    public var retention: Duration
    public var grace: Duration

    public init(retention: Duration, grace: Duration = .seconds(3600)) {
        self.retention = retention
        self.grace = grace
    }

    public struct Plan: Sendable, Equatable {
        /// Keys to delete, oldest generation first.
        public var delete: [String] = []
        public var bytes: Int64 = 0
        /// Objects and bytes to delete, by generation.
        public var byGeneration: [GenerationID: Amount] = [:]
        /// The start of the window the retention guarantees (`now - retention`).
        public var windowStartMs: UInt64
        /// When more becomes deletable (a newer snapshot, or a newer generation's start, reaches
        /// the cutoff), or nil when nothing ever will without new objects: an agent schedules its
        /// next prune then, and makes no request before.
        public var nextDueMs: UInt64?
        /// Set when the planner check refused the plan (then `delete` is empty).
        public var problem: String?
    }

    public struct Amount: Sendable, Equatable {
        public var objects: Int
        public var bytes: Int64
    }

    /// The plan for `inventory` at `nowMs`. `forks` are the groups of generations that are
    /// separate lineages of one replica (`Lineage.forks`).
    public func plan(inventory: ReplicaInventory, forks: [[GenerationID]] = [], nowMs: UInt64) -> Plan {
        let retentionMs = UInt64(max(0, retention.milliseconds))
        let cutoff = nowMs - min(nowMs, retentionMs + UInt64(max(0, grace.milliseconds)))
        let planner = RestorePlanner(inventory: inventory)
        let generations = inventory.generations
        let spans = Dictionary(uniqueKeysWithValues: planner.spans.map { ($0.generation, $0) })
        // Fork siblings by generation; a generation two agents continued is a fork of its own.
        var siblings: [GenerationID: [GenerationID]] = [:]
        for group in forks { for generation in group { siblings[generation] = group } }
        for generation in generations where planner.overlap(in: generation) != nil && siblings[generation] == nil {
            siblings[generation] = [generation]
        }

        var plan = Plan(windowStartMs: nowMs - min(nowMs, retentionMs))
        var due: [UInt64] = []
        var deletedWhole: Set<GenerationID> = []
        for generation in generations {
            let group = siblings[generation] ?? [generation]
            let supersededAt = group.map { supersededMs(of: $0, in: inventory, spans: spans, siblings: group) }
            if supersededAt.allSatisfy({ $0 != nil && $0! <= cutoff }) {
                deletedWhole.insert(generation)
            } else if let latest = supersededAt.compactMap({ $0 }).max(), supersededAt.allSatisfy({ $0 != nil }) {
                due.append(latest)
            }
        }
        var deleted: [String: Int64] = [:]
        for generation in generations {
            let snapshots = inventory.snapshots(of: generation)
            let segments = inventory.segments(of: generation)
            if deletedWhole.contains(generation) {
                for object in snapshots { deleted[object.key] = object.size }
                for object in segments { deleted[object.key] = object.size }
                continue
            }
            guard siblings[generation] == nil else { continue }
            let reaches = planner.reaches(of: generation).sorted {
                ($0.snapshot.takenMs, $0.snapshot.usableTxid) < ($1.snapshot.takenMs, $1.snapshot.usableTxid)
            }
            // A later reachable snapshot becomes the anchor once the cutoff passes its time.
            if let anchor = reaches.last(where: { $0.snapshot.takenMs <= cutoff }) {
                let older = { (snapshot: ReplicaLayout.SnapshotEntry) in
                    (snapshot.takenMs, snapshot.usableTxid) < (anchor.snapshot.takenMs, anchor.snapshot.usableTxid)
                }
                for object in snapshots where older(object) { deleted[object.key] = object.size }
                for object in segments where object.lastTxid <= anchor.snapshot.fromTxid {
                    deleted[object.key] = object.size
                }
            }
            if let next = reaches.first(where: { $0.snapshot.takenMs > cutoff }) {
                due.append(next.snapshot.takenMs)
            }
        }
        let deadline = retentionMs + UInt64(max(0, grace.milliseconds))
        plan.nextDueMs = due.map { $0 + deadline }.filter { $0 > nowMs }.min()
        let keys = generations.flatMap { generation in
            (inventory.snapshots(of: generation).map(\.key) + inventory.segments(of: generation).map(\.key))
                .filter { deleted[$0] != nil }
        }
        guard !keys.isEmpty else { return plan }
        if let problem = check(deleting: Set(keys), from: inventory, cutoff: cutoff, nowMs: nowMs) {
            plan.problem = problem
            return plan
        }
        plan.delete = keys
        for generation in generations {
            let objects =
                inventory.snapshots(of: generation).map { ($0.key, $0.size) }
                + inventory.segments(of: generation).map { ($0.key, $0.size) }
            let gone = objects.filter { deleted[$0.0] != nil }
            guard !gone.isEmpty else { continue }
            let bytes = gone.reduce(0) { $0 + $1.1 }
            plan.byGeneration[generation] = Amount(objects: gone.count, bytes: bytes)
            plan.bytes += bytes
        }
        return plan
    }

    /// When a later generation (not a sibling) has its first restore point, if this generation
    /// has ended by then: from that time on no restore starts from this generation. Nil when no
    /// later generation has a restore point.
    private func supersededMs(
        of generation: GenerationID, in inventory: ReplicaInventory,
        spans: [GenerationID: RestorePlanner.GenerationSpan],
        siblings: [GenerationID]
    ) -> UInt64? {
        guard
            let successor = spans.values.filter({ $0.generation > generation && !siblings.contains($0.generation) })
                .min(by: { $0.firstMs < $1.firstMs })
        else { return nil }
        let endedMs = max(
            inventory.segments(of: generation).map(\.lastMs).max() ?? 0,
            inventory.snapshots(of: generation).map(\.takenMs).max() ?? 0)
        return max(successor.firstMs, endedMs)
    }

    /// Nil when every restore the window needs plans the same objects without `keys`; else why.
    private func check(
        deleting keys: Set<String>, from inventory: ReplicaInventory, cutoff: UInt64, nowMs: UInt64
    )
        -> String?
    {
        let pruned = ReplicaInventory(
            snapshots: inventory.snapshots.filter { !keys.contains($0.key) },
            segments: inventory.segments.filter { !keys.contains($0.key) })
        let before = RestorePlanner(inventory: inventory)
        let after = RestorePlanner(inventory: pruned)
        var targets: [RestorePlanner.Target] = [.latest, .time(cutoff)]
        for span in before.spans {
            for reach in before.reaches(of: span.generation) {
                if reach.snapshot.takenMs >= cutoff { targets.append(.time(reach.snapshot.takenMs)) }
                if reach.lastMs >= cutoff { targets.append(.time(reach.lastMs)) }
            }
            if span.firstMs >= cutoff { targets.append(.time(span.firstMs)) }
        }
        for target in targets {
            let planned = Result { try before.plan(target) }
            guard case .success(let expected) = planned else { continue }
            let actual = Result { try after.plan(target) }
            guard case .success(let got) = actual, got == expected else {
                return "the plan would change the restore of \(target) (\(actual)); nothing is deleted"
            }
        }
        return nil
    }
}
