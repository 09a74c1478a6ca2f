import Foundation

/// What one LIST of a replica shows: every snapshot and segment, by generation. Restore plans
/// and the agent's start-up decisions are made from it without further listing.
public struct ReplicaInventory: Sendable {
    public var snapshots: [ReplicaLayout.SnapshotEntry] = []
    public var segments: [ReplicaLayout.SegmentEntry] = []
    /// Keys under `generations/` that are no walship object (`walship verify` reports them).
    public var unrecognized: [String] = []

    public init(snapshots: [ReplicaLayout.SnapshotEntry] = [], segments: [ReplicaLayout.SegmentEntry] = []) {
        self.snapshots = snapshots
        self.segments = segments
    }

    /// Lists the replica once (all pages).
    public static func load(store: any ObjectStore, layout: ReplicaLayout) async throws -> ReplicaInventory {
        var inventory = ReplicaInventory()
        for object in try await store.list(prefix: layout.generationsPrefix) {
            switch layout.parse(key: object.key, size: object.size) {
            case .snapshot(let entry)?: inventory.snapshots.append(entry)
            case .segment(let entry)?: inventory.segments.append(entry)
            case nil: inventory.unrecognized.append(object.key)
            }
        }
        inventory.snapshots.sort {
            ($0.generation, $0.usableTxid, $0.takenMs) < ($1.generation, $1.usableTxid, $1.takenMs)
        }
        inventory.segments.sort { ($0.generation, $0.firstTxid) < ($1.generation, $1.firstTxid) }
        return inventory
    }

    public var isEmpty: Bool { snapshots.isEmpty && segments.isEmpty }

    /// The newest time the replica records (a segment's last commit, a snapshot's time), or 0.
    public var newestMs: UInt64 {
        max(segments.map(\.lastMs).max() ?? 0, snapshots.map(\.takenMs).max() ?? 0)
    }

    /// A restore target time (`--at`). A relative one counts back from `now`, or from the newest
    /// time the replica records when that is later: commit times keep advancing when an agent's
    /// wall clock steps back.
    public func time(_ text: String, now: Date = Date()) throws -> UInt64 {
        try Timestamp.parse(text, now: max(now, Date(timeIntervalSince1970: Double(newestMs) / 1000)))
    }

    /// Generations, oldest first.
    public var generations: [GenerationID] {
        Array(Set(snapshots.map(\.generation) + segments.map(\.generation))).sorted()
    }

    public func segments(of generation: GenerationID) -> [ReplicaLayout.SegmentEntry] {
        segments.filter { $0.generation == generation }
    }

    public func snapshots(of generation: GenerationID) -> [ReplicaLayout.SnapshotEntry] {
        snapshots.filter { $0.generation == generation }
    }

    /// The highest txid any object names (txids are never reused across generations).
    public var maxTxid: UInt64 {
        max(segments.map(\.lastTxid).max() ?? 0, snapshots.map(\.usableTxid).max() ?? 0)
    }
}
