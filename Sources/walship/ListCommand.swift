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

    typealias Output = ReplicaListing

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let replica = try replicaTarget.replica(logger: logger)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let lineage = try await Lineage.load(store: replica.store, inventory: inventory)
        var output = ReplicaListing(location: replica.location, inventory: inventory, lineage: lineage)
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
