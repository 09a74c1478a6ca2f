/// Each generation's predecessor link (generation and txid it branched from), read from the
/// header of its first snapshot (one small ranged GET per generation), and the forks among them.
///
/// A fork is two lineages in one replica, from two agents replicating to it or an agent started
/// without its state while another runs. It shows in these ways:
/// - generations that name the same predecessor (or several that name none);
/// - a generation whose predecessor kept shipping transactions after the branch point
///   (`predecessorTxid`): in one lineage a generation ends before its successor starts;
/// - two generations that shipped the same txids at the same time: an older generation with an
///   object taken after a newer one was created, at or past that newer one's first txid. That
///   is how a database restored from the replica and replicated while the original still runs
///   (a drill), or the later generations of an agent racing another one, show. A restored
///   generation whose predecessor's later points all came before it (a rollback: the original
///   was stopped and restored over) is not a fork: its points supersede those.
/// Restore refuses a forked generation unless `--generation` picks one.
public struct Lineage: Sendable {
    public struct Link: Sendable, Equatable {
        public var generation: GenerationID?
        public var txid: UInt64
        /// Why the generation started; a database restored from the replica (`restored`) branches
        /// off on purpose, which is not a fork.
        public var reason: ObjectHeader.GenerationReason

        public init(generation: GenerationID?, txid: UInt64, reason: ObjectHeader.GenerationReason = .none) {
            self.generation = generation
            self.txid = txid
            self.reason = reason
        }
    }

    /// One object of a generation: when it was taken (a segment's last commit time, a
    /// snapshot's time) and the highest txid it covers.
    public struct Activity: Sendable, Equatable {
        public var ms: UInt64
        public var txid: UInt64

        public init(ms: UInt64, txid: UInt64) {
            self.ms = ms
            self.txid = txid
        }
    }

    public var links: [GenerationID: Link]
    /// The highest txid each generation shipped (segments and snapshots).
    public var lastTxids: [GenerationID: UInt64]
    /// Each generation's first txid (its first restore point, or its first segment's).
    public var firstTxids: [GenerationID: UInt64]
    /// Each generation's objects as (time, highest txid).
    public var activity: [GenerationID: [Activity]]

    public init(
        links: [GenerationID: Link], lastTxids: [GenerationID: UInt64] = [:], firstTxids: [GenerationID: UInt64] = [:],
        activity: [GenerationID: [Activity]] = [:]
    ) {
        self.links = links
        self.lastTxids = lastTxids
        self.firstTxids = firstTxids
        self.activity = activity
    }

    /// What one LIST shows of each generation (txids and times), without the predecessor links:
    /// enough for `concurrentPairs`, which is how the agent checks its generation at start.
    public init(inventory: ReplicaInventory) {
        self.init(links: [:])
        for generation in inventory.generations {
            let segments = inventory.segments(of: generation)
            let snapshots = inventory.snapshots(of: generation)
            lastTxids[generation] = max(segments.map(\.lastTxid).max() ?? 0, snapshots.map(\.usableTxid).max() ?? 0)
            firstTxids[generation] = min(
                segments.map(\.firstTxid).min() ?? .max, snapshots.map(\.usableTxid).min() ?? .max)
            activity[generation] =
                segments.map { Activity(ms: $0.lastMs, txid: $0.lastTxid) }
                + snapshots.map { Activity(ms: $0.takenMs, txid: $0.usableTxid) }
        }
    }

    /// Reads the first snapshot header of every generation, 16 ranged GETs at a time (a replica
    /// can hold hundreds of generations, and restore pays for this before it starts); headers in
    /// `known` (already read, by key) are not fetched again.
    public static func load(
        store: any ObjectStore, inventory: ReplicaInventory, known: [String: ObjectHeader] = [:]
    ) async throws -> Lineage {
        var lineage = Lineage(inventory: inventory)
        var firsts: [(GenerationID, String)] = []
        for generation in inventory.generations {
            if let first = inventory.snapshots(of: generation).min(by: { $0.takenMs < $1.takenMs }) {
                firsts.append((generation, first.key))
            }
        }
        var links: [GenerationID: Link] = [:]
        try await withThrowingTaskGroup(of: (GenerationID, Link)?.self) { group in
            var next = 0
            func schedule() {
                guard next < firsts.count else { return }
                let (generation, key) = firsts[next]
                next += 1
                group.addTask {
                    // A first snapshot that is corrupt, or gone since the LIST (a prune), leaves
                    // its generation's link unknown: it cannot be restored from anyway (restore
                    // and verify name that object), and it must not stop restores, lists and
                    // prunes of every other generation.
                    let header: ObjectHeader
                    if let knownHeader = known[key] {
                        header = knownHeader
                    } else {
                        do {
                            header = try ObjectHeader.decode(
                                try await store.get(key, range: 0..<Int64(ObjectHeader.maximumSize)), key: key)
                        } catch let error as WalshipError
                            where error.code == .objectCorrupt || error.code == .objectNotFound
                        {
                            return nil
                        }
                    }
                    let predecessor =
                        header.predecessorGeneration == 0 ? nil : GenerationID(header.predecessorGeneration)
                    return (
                        generation, Link(generation: predecessor, txid: header.predecessorTxid, reason: header.reason)
                    )
                }
            }
            for _ in 0..<16 { schedule() }
            while let result = try await group.next() {
                if let (generation, link) = result { links[generation] = link }
                schedule()
            }
        }
        lineage.links = links
        return lineage
    }

    /// Groups of generations that are forks of each other, each sorted, oldest group first.
    public var forks: [[GenerationID]] {
        var children: [UInt64: [GenerationID]] = [:]
        for (generation, link) in links where link.reason != .restored {
            children[link.generation?.value ?? 0, default: []].append(generation)
        }
        var groups = children.values.filter { $0.count > 1 }.map(Set.init)
        for (generation, link) in links where link.reason != .restored {
            guard let predecessor = link.generation, let shipped = lastTxids[predecessor], shipped > link.txid else {
                continue
            }
            groups.append([predecessor, generation])
        }
        groups += concurrentPairs.map { Set([$0.0, $0.1]) }
        // Merge groups that share a generation.
        var merged: [Set<GenerationID>] = []
        for group in groups {
            var group = group
            merged.removeAll { existing in
                guard !existing.isDisjoint(with: group) else { return false }
                group.formUnion(existing)
                return true
            }
            merged.append(group)
        }
        return merged.map { $0.sorted() }.sorted { $0[0] < $1[0] }
    }

    /// Pairs (older, newer) of generations that shipped the same txids at the same time: the
    /// older one has an object taken after the newer one was created, at or past the newer
    /// one's first txid. (One agent creates a generation after its predecessor's last commit,
    /// on one clock, and starts it past every txid it saw: only another agent writes such an
    /// object.)
    var concurrentPairs: [(GenerationID, GenerationID)] {
        // Per generation: its objects newest first, with the highest txid of each one and all
        // newer ones, so "the highest txid shipped after time t" is one binary search.
        let latestFirst: [GenerationID: [Activity]] = activity.mapValues { objects in
            var sorted = objects.sorted { $0.ms > $1.ms }
            var highest: UInt64 = 0
            for index in sorted.indices {
                highest = max(highest, sorted[index].txid)
                sorted[index].txid = highest
            }
            return sorted
        }
        func highestTxid(of generation: GenerationID, after ms: UInt64) -> UInt64? {
            guard let objects = latestFirst[generation] else { return nil }
            // The last index whose object is newer than `ms` (objects are newest first).
            var low = 0
            var high = objects.count
            while low < high {
                let middle = (low + high) / 2
                if objects[middle].ms > ms { low = middle + 1 } else { high = middle }
            }
            return low == 0 ? nil : objects[low - 1].txid
        }
        let generations = latestFirst.keys.sorted()
        var pairs: [(GenerationID, GenerationID)] = []
        for (index, newer) in generations.enumerated() {
            guard let first = firstTxids[newer], first != .max else { continue }
            for older in generations[..<index] {
                if let shipped = highestTxid(of: older, after: newer.createdMilliseconds), shipped >= first {
                    pairs.append((older, newer))
                }
            }
        }
        return pairs
    }

    /// The fork group a generation belongs to, if any.
    public func fork(containing generation: GenerationID) -> [GenerationID]? {
        forks.first { $0.contains(generation) }
    }
}
