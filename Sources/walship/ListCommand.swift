import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// `walship list REPLICA_URL [--json]`: generations, snapshots and the restore window.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List a replica's generations, snapshots and restore window."
    )

    @OptionGroup var replicaTarget: ReplicaTarget

    @Flag(name: .long, help: "Print JSON (schema in docs/operations.md).")
    var json = false

    @Option(
        name: .long,
        help:
            "Show what this retention guarantees and what a prune would delete now (default: the bucket's, with --config)."
    )
    var retention: String?

    @Option(name: .long, help: "With a retention: the grace kept beyond it (default 1h, or the bucket's).")
    var retentionGrace: String?

    @OptionGroup var global: GlobalOptions

    struct Output: Encodable {
        struct Snapshot: Encodable {
            var key: String
            var takenAt: String
            var fromTxid: UInt64
            var usableTxid: UInt64
            var bytes: Int64
        }

        struct Generation: Encodable {
            var id: String
            var firstTxid: UInt64?
            var lastTxid: UInt64?
            var firstTime: String?
            var lastTime: String?
            var snapshots: [Snapshot]
            var segments: Int
            var bytes: Int64
            /// Txid ranges whose segments are missing (lost objects), as [first, last] pairs.
            var missingTxids: [[UInt64]]
        }

        /// A generation two agents continued from one state: its segments overlap from `fromTxid`.
        struct ForkedGeneration: Encodable {
            var id: String
            var fromTxid: UInt64
        }

        struct Window: Encodable {
            var earliestTime: String
            var earliestTxid: UInt64
            var latestTime: String
            var latestTxid: UInt64
        }

        var replica: String
        var forks: [[String]]
        var forkedGenerations: [ForkedGeneration]
        var generations: [Generation]
        var restoreWindow: Window?
        var objects: Int
        var bytes: Int64
        /// With a retention (`--retention`, or the bucket's with `--config`): what it guarantees
        /// and what a prune would delete now.
        var retention: Retention?

        struct Retention: Encodable {
            var retentionSeconds: Double
            var graceSeconds: Double
            var windowStart: String
            var prunableObjects: Int
            var prunableBytes: Int64
            var nextDue: String?
        }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let replica = try replicaTarget.replica(logger: logger)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let lineage = try await Lineage.load(store: replica.store, inventory: inventory)
        var output = Self.output(location: replica.location, inventory: inventory, lineage: lineage)
        let policy =
            retention != nil || replicaTarget.config != nil
            ? try PruneCommand.policy(
                retention: retention, grace: retentionGrace, configured: try replicaTarget.configuredRetention())
            : nil
        if let policy {
            let plan = policy.plan(
                inventory: inventory, forks: lineage.forks, nowMs: PruneCommand.nowMs(for: inventory))
            output.retention = Output.Retention(
                retentionSeconds: policy.retention.seconds, graceSeconds: policy.grace.seconds,
                windowStart: Timestamp.format(milliseconds: plan.windowStartMs), prunableObjects: plan.delete.count,
                prunableBytes: plan.bytes, nextDue: plan.nextDueMs.map { Timestamp.format(milliseconds: $0) })
        }
        if json {
            try PruneCommand.printJSON(output)
        } else {
            Self.printText(output)
        }
    }

    /// What a replica holds: its generations, their snapshots and restore points, forks, and
    /// the restore window.
    static func output(location: String, inventory: ReplicaInventory, lineage: Lineage) -> Output {
        let planner = RestorePlanner(inventory: inventory)
        var generations: [Output.Generation] = []
        for generation in inventory.generations {
            let span = planner.span(of: generation)
            let snapshots = inventory.snapshots(of: generation).map {
                Output.Snapshot(
                    key: $0.key, takenAt: Timestamp.format(milliseconds: $0.takenMs), fromTxid: $0.fromTxid,
                    usableTxid: $0.usableTxid, bytes: $0.size)
            }
            let segments = inventory.segments(of: generation)
            generations.append(
                Output.Generation(
                    id: "\(generation)", firstTxid: span?.firstTxid, lastTxid: span?.lastTxid,
                    firstTime: span.map { Timestamp.format(milliseconds: $0.firstMs) },
                    lastTime: span.map { Timestamp.format(milliseconds: $0.lastMs) }, snapshots: snapshots,
                    segments: segments.count,
                    bytes: snapshots.reduce(0) { $0 + $1.bytes } + segments.reduce(0) { $0 + $1.size },
                    missingTxids: planner.missingTxids(in: generation).map { [$0.lowerBound, $0.upperBound] }))
        }
        let window = Self.window(planner.spans)
        let forkedGenerations = inventory.generations.compactMap { generation in
            planner.overlap(in: generation).map { Output.ForkedGeneration(id: "\(generation)", fromTxid: $0) }
        }
        return Output(
            replica: location, forks: lineage.forks.map { $0.map { "\($0)" } },
            forkedGenerations: forkedGenerations, generations: generations,
            restoreWindow: window,
            objects: inventory.snapshots.count + inventory.segments.count,
            bytes: inventory.snapshots.reduce(0) { $0 + $1.size } + inventory.segments.reduce(0) { $0 + $1.size })
    }

    /// The restore window of `spans`: from the first restore point to the last.
    static func window(_ spans: [RestorePlanner.GenerationSpan]) -> Output.Window? {
        guard let first = spans.first, let last = spans.last else { return nil }
        return Output.Window(
            earliestTime: Timestamp.format(milliseconds: first.firstMs), earliestTxid: first.firstTxid,
            latestTime: Timestamp.format(milliseconds: last.lastMs), latestTxid: last.lastTxid)
    }

    static func printText(_ output: Output) {
        print("replica \(output.replica): \(output.objects) objects, \(ValueParsing.formatBytes(output.bytes))")
        if let window = output.restoreWindow {
            print(
                "restore window: \(window.earliestTime) (txid \(window.earliestTxid)) to \(window.latestTime) (txid \(window.latestTxid))"
            )
        } else {
            print("restore window: none (no generation has a snapshot yet)")
        }
        if let retention = output.retention {
            print(
                "retention \(retention.retentionSeconds)s (grace \(retention.graceSeconds)s): every moment from \(retention.windowStart) restorable; a prune now would delete \(retention.prunableObjects) objects, \(ValueParsing.formatBytes(retention.prunableBytes))"
            )
        }
        for forked in output.forkedGenerations {
            print(
                "fork: generation \(forked.id) was continued by two agents from txid \(forked.fromTxid); restore only points before it"
            )
        }
        for fork in output.forks {
            print(
                "fork: generations \(fork.joined(separator: ", ")) are separate lineages (two agents on one replica?); restore needs --generation"
            )
        }
        for generation in output.generations {
            let span =
                generation.firstTxid.map {
                    "txid \($0)...\(generation.lastTxid!), \(generation.firstTime!) to \(generation.lastTime!)"
                }
                ?? "no restore point yet"
            print(
                "generation \(generation.id): \(span); \(generation.snapshots.count) snapshots, \(generation.segments) segments, \(ValueParsing.formatBytes(generation.bytes))"
            )
            for missing in generation.missingTxids {
                print(
                    "  missing: the segments holding txids \(missing[0])...\(missing[1]) are not in the replica (lost objects); restore points after them need a later snapshot"
                )
            }
            for snapshot in generation.snapshots {
                print(
                    "  snapshot \(snapshot.takenAt) txid \(snapshot.fromTxid)...\(snapshot.usableTxid) \(ValueParsing.formatBytes(snapshot.bytes))"
                )
            }
        }
    }
}
