import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// `walship prune (REPLICA_URL | DB) --retention D`: deletes what the replica no longer needs so
/// that every moment of the retention stays restorable (`RetentionPolicy`, docs/operations.md).
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the objects a replica no longer needs to restore every moment of the retention.",
        discussion: """
            Deletes only whole chains that a newer snapshot at least --retention plus \
            --retention-grace old has superseded, and whole older generations; never the newest \
            snapshot or anything after it, never a fork's generations while one of them is still \
            needed, never an object walship does not recognize. The window counts back from now, \
            or from the replica's newest restore point when that is earlier (a clock that runs \
            ahead never deletes more). Deletes are confirmed by listing again; keys the store \
            refuses or keeps are named, and the exit status is 4.
            """
    )

    @OptionGroup var replicaTarget: ReplicaTarget

    @Option(
        name: .long,
        help: "How far back every moment stays restorable, e.g. 72h or 30d (default: the bucket's, with --config).")
    var retention: String?

    @Option(name: .long, help: "Extra time kept for restores planned just before a prune (default 1h).")
    var retentionGrace: String?

    @Flag(name: .long, help: "Print what would be deleted; delete nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print JSON (schema in docs/operations.md).")
    var json = false

    @OptionGroup var global: GlobalOptions

    typealias Window = ReplicaListing.Window

    struct Output: Encodable {
        struct Generation: Encodable {
            var id: String
            var objects: Int
            var bytes: Int64
        }

        var replica: String
        var dryRun: Bool
        var retentionSeconds: Double
        var graceSeconds: Double
        var now: String
        var windowStart: String
        var objects: Int
        var bytes: Int64
        var generations: [Generation]
        var keys: [String]
        var windowBefore: Window?
        var windowAfter: Window?
        var nextDue: String?
        var failures: [String]
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let policy = try Self.policy(
            retention: retention, grace: retentionGrace, configured: try replicaTarget.configuredRetention())
        guard let policy else {
            logger.info("the bucket's retention is none: nothing is deleted")
            return
        }
        let replica = try replicaTarget.replica(logger: logger)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let lineage = try await Lineage.load(store: replica.store, inventory: inventory)
        let nowMs = Self.nowMs(for: inventory)
        let plan = policy.plan(inventory: inventory, forks: lineage.forks, nowMs: nowMs)
        if let problem = plan.problem {
            throw WalshipError(.internal, "the retention plan was refused: \(problem)")
        }
        var failures: [String] = []
        if !dryRun {
            let outcome = try await Pruner(replica: replica).execute(plan)
            failures += outcome.failures.map { "\($0.key): \($0.code) \($0.message)" }
            failures += outcome.persisting.map { "\($0): still listed after its delete succeeded" }
        }
        let deleted = Set(plan.delete)
        let pruned = ReplicaInventory(
            snapshots: inventory.snapshots.filter { !deleted.contains($0.key) },
            segments: inventory.segments.filter { !deleted.contains($0.key) })
        let output = Output(
            replica: replica.location, dryRun: dryRun, retentionSeconds: policy.retention.seconds,
            graceSeconds: policy.grace.seconds, now: Timestamp.format(milliseconds: nowMs),
            windowStart: Timestamp.format(milliseconds: plan.windowStartMs), objects: plan.delete.count,
            bytes: plan.bytes,
            generations: plan.byGeneration.sorted { $0.key < $1.key }.map {
                Output.Generation(id: "\($0.key)", objects: $0.value.objects, bytes: $0.value.bytes)
            }, keys: plan.delete, windowBefore: Self.window(inventory), windowAfter: Self.window(pruned),
            nextDue: plan.nextDueMs.map { Timestamp.format(milliseconds: $0) }, failures: failures)
        if json {
            try PruneCommand.printJSON(output)
        } else {
            Self.printText(output)
        }
        guard failures.isEmpty else {
            throw WalshipError(
                .storeUnavailable,
                "\(failures.count) of \(plan.delete.count) objects were not deleted (the next prune tries again): \(failures.prefix(10).joined(separator: "; "))"
            )
        }
        logger.info(
            dryRun ? "prune planned (dry run)" : "prune complete",
            metadata: ["prune.objects": "\(plan.delete.count)", "prune.bytes": "\(plan.bytes)"])
    }

    /// The policy the flags give, else the configuration's (nil for `none`); without either,
    /// a usage error.
    static func policy(retention: String?, grace: String?, configured: RetentionPolicy??) throws -> RetentionPolicy? {
        let graceValue = try grace.map { try ValueParsing.duration($0, name: "--retention-grace") }
        if let retention {
            if retention == "none" { return nil }
            return RetentionPolicy(
                retention: try ValueParsing.duration(retention, name: "--retention"),
                grace: graceValue ?? .seconds(3600))
        }
        guard let configured else {
            throw WalshipError(.usage, "give --retention (or --config, to use the bucket's retention)")
        }
        return configured.map { RetentionPolicy(retention: $0.retention, grace: graceValue ?? $0.grace) }
    }

    /// The "now" a prune counts back from: the wall clock, or the replica's newest restore point
    /// when that is earlier (a clock that runs ahead never deletes more).
    static func nowMs(for inventory: ReplicaInventory) -> UInt64 {
        min(UInt64(Date().timeIntervalSince1970 * 1000), inventory.newestMs)
    }

    /// Prints a command's output as JSON (snake-case keys, sorted, indented).
    static func printJSON(_ output: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(output), as: UTF8.self))
    }

    static func window(_ inventory: ReplicaInventory) -> Window? {
        ReplicaListing.window(RestorePlanner(inventory: inventory).spans)
    }

    static func printText(_ output: Output) {
        func describe(_ window: Window?) -> String {
            window.map { "\($0.earliestTime) (txid \($0.earliestTxid)) to \($0.latestTime) (txid \($0.latestTxid))" }
                ?? "none"
        }
        print("replica \(output.replica): retention \(output.retentionSeconds)s, grace \(output.graceSeconds)s")
        print("restore window before: \(describe(output.windowBefore))")
        print(
            "\(output.dryRun ? "would delete" : "deleted") \(output.objects) objects, \(ValueParsing.formatBytes(output.bytes))"
        )
        for generation in output.generations {
            print(
                "  generation \(generation.id): \(generation.objects) objects, \(ValueParsing.formatBytes(generation.bytes))"
            )
        }
        print("restore window after: \(describe(output.windowAfter))")
        print("guaranteed from: \(output.windowStart); next prune due: \(output.nextDue ?? "not before new objects")")
        for failure in output.failures { print("not deleted: \(failure)") }
    }
}
