import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The first snapshot of a generation damaged in the store, or gone (a prune or a hand that
/// deleted it), while the agent runs: `list`, the latest restore, `verify` (which must name the
/// object) and a dry-run prune keep working; a restore that needs the object exits 9 (or 6/7 when
/// it is gone) and writes nothing. The object is put back afterwards, so the checker's restores
/// at the end see an undamaged replica.
enum SnapshotDamage {
    enum Way: String, CaseIterable {
        case header = "first snapshot's header damaged in the store"
        case body = "first snapshot's body damaged in the store"
        case missing = "first snapshot missing from the store"
    }

    /// Runs the event; returns its name for the counts (nil when no snapshot qualified) and the
    /// problems found.
    static func run(
        replicaURL: String, environment: [String: String], directory: TemporaryDirectory,
        using random: inout SeededGenerator
    ) async throws -> (event: String?, problems: [String]) {
        let replica = try ReplicaFactoryForChecks.replica(url: replicaURL, environment: environment)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let newest = inventory.generations.max { $0.value < $1.value }
        // The latest restore point must not need the damaged object: a first snapshot of an
        // older generation, or of the newest one when a later snapshot follows it.
        // (Nor the one the latest point starts from now: a newer snapshot whose segments are not
        // all up yet reaches nothing, and uploads only ever move the latest point past it.)
        let latestSnapshot = try? RestorePlanner(inventory: inventory).plan(.latest).snapshot.key
        let candidates = inventory.generations.compactMap { generation -> ReplicaLayout.SnapshotEntry? in
            let snapshots = inventory.snapshots(of: generation).sorted { $0.takenMs < $1.takenMs }
            guard let first = snapshots.first, generation != newest || snapshots.count > 1, first.key != latestSnapshot
            else { return nil }
            return first
        }
        guard let target = candidates.randomElement(using: &random) else { return (nil, []) }
        let way = Way.allCases.randomElement(using: &random)!
        let original = try await replica.store.get(target.key, range: nil)
        switch way {
        case .header, .body:
            var damaged = original
            let offset = way == .header ? 0 : damaged.count / 2 + Int.random(in: 0..<16, using: &random)
            damaged[min(offset, damaged.count - 1)] ^= 0x5a
            try await replica.store.put(target.key, body: .bytes(damaged), ifNoneMatch: false)
        case .missing:
            try await replica.store.delete(target.key)
        }
        var problems: [String] = []
        func walship(_ arguments: [String]) throws -> CommandRunner.Output {
            try WalshipBinary.run(arguments, environment: environment)
        }
        let what = "with \(target.key) \(way == .missing ? "missing" : "damaged")"
        let list = try walship(["list", replicaURL, "--json"])
        if list.status != 0 {
            problems.append("walship list \(what) exited \(list.status): \(list.stderr.suffix(300))")
        }
        let latest = directory.file("damage-latest.db")
        let restore = try walship(["restore", replicaURL, "-o", latest, "--quiet"])
        if restore.status != 0 {
            problems.append("the latest restore \(what) exited \(restore.status): \(restore.stderr.suffix(300))")
        }
        try? FileManager.default.removeItem(atPath: latest)
        let needing = directory.file("damage-needing.db")
        let needs = try walship([
            "restore", replicaURL, "-o", needing, "--quiet", "--generation", "\(target.generation)", "--txid",
            String(target.usableTxid),
        ])
        // A generation whose only object is gone is not in the replica any more: --generation of
        // it is a usage error (2); with other objects left it has no restore point there (6, 7).
        let alone =
            inventory.segments(of: target.generation).isEmpty && inventory.snapshots(of: target.generation).count == 1
        let expected: Set<Int32> = way == .missing ? (alone ? [2] : [6, 7, 9]) : [9]
        if !expected.contains(needs.status) {
            problems.append(
                "a restore of txid \(target.usableTxid) \(what) exited \(needs.status), expected \(expected.sorted()): \(needs.stderr.suffix(300))"
            )
        }
        if FileManager.default.fileExists(atPath: needing) {
            problems.append("a failed restore \(what) left its output file")
            try? FileManager.default.removeItem(atPath: needing)
        }
        let verify = try walship(["verify", replicaURL, "--json"])
        if (try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8))) == nil {
            problems.append(
                "walship verify \(what) exited \(verify.status) without a report: \(verify.stderr.suffix(300))")
        } else if way != .missing && (verify.status != 9 || !verify.stdout.contains(target.key)) {
            problems.append("walship verify \(what) exited \(verify.status) and did not name the object")
        }
        let prune = try walship(["prune", replicaURL, "--retention", "1s", "--retention-grace", "0s", "--dry-run"])
        if prune.status != 0 {
            problems.append("walship prune --dry-run \(what) exited \(prune.status): \(prune.stderr.suffix(300))")
        }
        try await replica.store.put(target.key, body: .bytes(original), ifNoneMatch: false)
        return (way.rawValue, problems)
    }
}
