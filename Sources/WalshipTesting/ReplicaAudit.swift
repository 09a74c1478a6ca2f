import Foundation
import WalshipCore

/// Reads every object of a replica and checks its structure, the way a verifier would: each
/// object's header and checksum, each generation's segment chain (contiguous txids,
/// predecessor txid and checksum), and txids strictly increasing across generations.
public struct ReplicaAudit: Sendable {
    public struct GenerationSummary: Sendable {
        public var generation: GenerationID
        public var reason: ObjectHeader.GenerationReason
        public var snapshots: Int
        public var firstTxid: UInt64?
        public var lastTxid: UInt64?
        public var transactions: [SegmentFormat.Transaction]
    }

    public var generations: [GenerationSummary] = []
    public var problems: [String] = []

    /// Every transaction in every generation, in order.
    public var transactions: [SegmentFormat.Transaction] { generations.flatMap(\.transactions) }

    public static func run(replica: Replica) async throws -> ReplicaAudit {
        var audit = ReplicaAudit()
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let scratch = try TemporaryDirectory(prefix: "walship-audit")
        defer { scratch.remove() }
        var previousGenerationLast: UInt64 = 0
        for generation in inventory.generations {
            var summary = GenerationSummary(
                generation: generation, reason: .none, snapshots: 0, firstTxid: nil, lastTxid: nil, transactions: [])
            for snapshot in inventory.snapshots(of: generation) {
                if snapshot.fromTxid <= previousGenerationLast && previousGenerationLast > 0 {
                    audit.problems.append(
                        "'\(snapshot.key)' starts at txid \(snapshot.fromTxid), a txid an earlier generation already used"
                    )
                }
                let path = scratch.file("snapshot-\(UInt64.random(in: 0...UInt64.max))")
                _ = try await replica.store.download(snapshot.key, to: path)
                do {
                    let header = try ObjectFile.read(path: path, key: snapshot.key) { _, _ in }
                    summary.reason = header.reason
                    summary.snapshots += 1
                } catch {
                    audit.problems.append("\(error)")
                }
            }
            var previous: ObjectHeader?
            for segment in inventory.segments(of: generation) {
                let path = scratch.file("segment-\(UInt64.random(in: 0...UInt64.max))")
                _ = try await replica.store.download(segment.key, to: path)
                do {
                    var parser: SegmentPayloadParser?
                    var index: [SegmentFormat.Transaction] = []
                    let header = try ObjectFile.read(
                        path: path, key: segment.key,
                        expect: { parser = SegmentPayloadParser(header: $0, key: segment.key) },
                        consume: { _, bytes in
                            try parser!.feed(bytes) { event in
                                if case .index(let transactions) = event { index = transactions }
                            }
                        })
                    try parser?.finish()
                    if let previous, header.firstTxid <= previous.lastTxid {
                        // DESIGN.md section 4: no two objects of one generation cover the same txid.
                        audit.problems.append(
                            "'\(segment.key)' covers txids from \(header.firstTxid), which an earlier segment of generation \(generation) already covers (through \(previous.lastTxid))"
                        )
                    } else if let previous {
                        if header.firstTxid != previous.lastTxid + 1 || header.predecessorTxid != previous.lastTxid
                            || header.predecessorSHA256 != previous.payloadSHA256
                        {
                            audit.problems.append("'\(segment.key)' does not continue '\(previous.lastTxid)'")
                        }
                    } else if header.firstTxid <= previousGenerationLast {
                        audit.problems.append("'\(segment.key)' reuses txids of an earlier generation")
                    }
                    if index.map(\.txid) != Array(header.firstTxid...header.lastTxid) {
                        audit.problems.append(
                            "'\(segment.key)' index txids are not \(header.firstTxid)...\(header.lastTxid)")
                    }
                    summary.transactions += index
                    previous = header
                } catch {
                    audit.problems.append("\(error)")
                }
            }
            summary.firstTxid = summary.transactions.first?.txid
            summary.lastTxid = summary.transactions.last?.txid
            let snapshotLast = inventory.snapshots(of: generation).map(\.usableTxid).max() ?? 0
            previousGenerationLast = max(previousGenerationLast, summary.lastTxid ?? 0, snapshotLast)
            audit.generations.append(summary)
        }
        let all = audit.transactions.map(\.txid)
        if all != all.sorted() || Set(all).count != all.count {
            audit.problems.append("txids are not strictly increasing across the replica")
        }
        return audit
    }
}
