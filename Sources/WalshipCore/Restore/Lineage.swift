/// Each generation's predecessor link (generation and txid it branched from), read from the
/// header of its first snapshot (one small ranged GET per generation), and the forks among them.
///
/// A fork is two lineages in one replica, from two agents replicating to it or an agent started
/// without its state while another runs. It shows in two ways:
/// - generations that name the same predecessor (or several that name none);
/// - a generation whose predecessor kept shipping transactions after the branch point
///   (`predecessorTxid`): in one lineage a generation ends before its successor starts.
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

    public var links: [GenerationID: Link]
    /// The highest txid each generation shipped (segments and snapshots).
    public var lastTxids: [GenerationID: UInt64]

    public init(links: [GenerationID: Link], lastTxids: [GenerationID: UInt64] = [:]) {
        self.links = links
        self.lastTxids = lastTxids
    }

    /// Reads the first snapshot header of every generation, 16 ranged GETs at a time (a replica
    /// can hold hundreds of generations, and restore pays for this before it starts).
    public static func load(store: any ObjectStore, inventory: ReplicaInventory) async throws -> Lineage {
        var lastTxids: [GenerationID: UInt64] = [:]
        var firsts: [(GenerationID, String)] = []
        for generation in inventory.generations {
            let segmentMax = inventory.segments(of: generation).map(\.lastTxid).max() ?? 0
            let snapshotMax = inventory.snapshots(of: generation).map(\.usableTxid).max() ?? 0
            lastTxids[generation] = max(segmentMax, snapshotMax)
            if let first = inventory.snapshots(of: generation).min(by: { $0.takenMs < $1.takenMs }) {
                firsts.append((generation, first.key))
            }
        }
        var links: [GenerationID: Link] = [:]
        try await withThrowingTaskGroup(of: (GenerationID, Link).self) { group in
            var next = 0
            func schedule() {
                guard next < firsts.count else { return }
                let (generation, key) = firsts[next]
                next += 1
                group.addTask {
                    let header = try ObjectHeader.decode(
                        try await store.get(key, range: 0..<Int64(ObjectHeader.maximumSize)), key: key)
                    let predecessor =
                        header.predecessorGeneration == 0 ? nil : GenerationID(header.predecessorGeneration)
                    return (
                        generation, Link(generation: predecessor, txid: header.predecessorTxid, reason: header.reason)
                    )
                }
            }
            for _ in 0..<16 { schedule() }
            while let (generation, link) = try await group.next() {
                links[generation] = link
                schedule()
            }
        }
        return Lineage(links: links, lastTxids: lastTxids)
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

    /// The fork group a generation belongs to, if any.
    public func fork(containing generation: GenerationID) -> [GenerationID]? {
        forks.first { $0.contains(generation) }
    }
}
