import Testing

@testable import WalshipCore

@Suite("Restore planner")
struct RestorePlannerTests {
    static let layout = ReplicaLayout(prefix: "")
    static let first = GenerationID(0x100 << 20)
    static let second = GenerationID(0x200 << 20)

    static func snapshot(
        _ generation: GenerationID, from: UInt64, usable: UInt64, ms: UInt64
    ) -> ReplicaLayout.SnapshotEntry {
        .init(
            key: layout.snapshotKey(generation: generation, usableTxid: usable, fromTxid: from, takenMs: ms),
            generation: generation, usableTxid: usable, fromTxid: from, takenMs: ms, size: 1000)
    }

    static func segment(
        _ generation: GenerationID, _ first: UInt64, _ last: UInt64, _ firstMs: UInt64, _ lastMs: UInt64
    )
        -> ReplicaLayout.SegmentEntry
    {
        .init(
            key: layout.segmentKey(
                generation: generation, firstTxid: first, lastTxid: last, firstMs: firstMs, lastMs: lastMs),
            generation: generation, firstTxid: first, lastTxid: last, firstMs: firstMs, lastMs: lastMs, size: 100)
    }

    /// Generation 1: snapshot at 1000 ms (txids 0...2), segments 1-10 (1000-2000 ms), 11-20
    /// (2000-3000 ms), snapshot at 2500 ms (txids 14...15). Generation 2 after a gap: snapshot at
    /// 5000 ms (txids 20...20), segment 21-30 (5000-6000 ms).
    static let inventory = ReplicaInventory(
        snapshots: [
            snapshot(first, from: 0, usable: 2, ms: 1000), snapshot(first, from: 14, usable: 15, ms: 2500),
            snapshot(second, from: 20, usable: 20, ms: 5000),
        ],
        segments: [
            segment(first, 1, 10, 1000, 2000), segment(first, 11, 20, 2000, 3000), segment(second, 21, 30, 5000, 6000),
        ])

    @Test("latest restores the newest generation through its last txid")
    func latest() throws {
        let plan = try RestorePlanner(inventory: Self.inventory).plan(.latest)
        #expect(plan.generation == Self.second)
        #expect(plan.lastTxid == 30)
        #expect(plan.segments.map(\.firstTxid) == [21])
    }

    @Test("a txid picks the newest snapshot at or before it and the segments after the snapshot's fromTxid")
    func txidTarget() throws {
        let planner = RestorePlanner(inventory: Self.inventory)
        let early = try planner.plan(.txid(9))
        #expect(early.snapshot.usableTxid == 2)
        #expect(early.segments.map(\.firstTxid) == [1])
        let late = try planner.plan(.txid(17))
        #expect(late.snapshot.usableTxid == 15)
        #expect(late.segments.map(\.firstTxid) == [11])
        #expect(try planner.plan(.txid(25)).generation == Self.second)
    }

    @Test("a time picks the generation and snapshot at or before it and stops by commit time")
    func timeTarget() throws {
        let plan = try RestorePlanner(inventory: Self.inventory).plan(.time(2600))
        #expect(plan.generation == Self.first)
        #expect(plan.snapshot.takenMs == 2500)
        #expect(plan.untilMs == 2600)
        #expect(!plan.clampedToLatest)
        let after = try RestorePlanner(inventory: Self.inventory).plan(.time(9000))
        #expect(after.clampedToLatest)
        #expect(after.generation == Self.second)
    }

    @Test("a target before the first snapshot is outside the window; one in the gap is targetInGap naming both sides")
    func outsideAndGap() throws {
        let planner = RestorePlanner(inventory: Self.inventory)
        #expect { try planner.plan(.time(500)) } throws: { ($0 as? WalshipError)?.code == .targetOutsideWindow }
        #expect { try planner.plan(.txid(1)) } throws: { ($0 as? WalshipError)?.code == .targetOutsideWindow }
        do {
            _ = try planner.plan(.time(4000))
            Issue.record("a time in the gap was planned")
        } catch let error as WalshipError {
            #expect(error.code == .targetInGap)
            #expect(error.message.contains("\(Self.first)") && error.message.contains("\(Self.second)"))
        }
        let nearest = try planner.plan(.time(4000), options: .init(nearestBefore: true))
        #expect(nearest.generation == Self.first && nearest.lastTxid == 20 && nearest.untilMs == nil)
    }

    @Test(
        "--generation of a generation whose snapshot is gone is outside the window (6); one the replica does not hold is a usage error (2)"
    )
    func generationWithoutRestorePoint() throws {
        var noSnapshot = Self.inventory
        noSnapshot.snapshots.removeAll { $0.generation == Self.second }
        #expect {
            try RestorePlanner(inventory: noSnapshot).plan(.latest, options: .init(generation: Self.second))
        } throws: { ($0 as? WalshipError)?.code == .targetOutsideWindow }
        #expect {
            try RestorePlanner(inventory: Self.inventory).plan(.latest, options: .init(generation: GenerationID(7)))
        } throws: { ($0 as? WalshipError)?.code == .usage }
    }

    @Test("an empty replica is replicaEmpty; a missing segment is objectCorrupt")
    func emptyAndMissing() throws {
        #expect { try RestorePlanner(inventory: ReplicaInventory()).plan(.latest) } throws: {
            ($0 as? WalshipError)?.code == .replicaEmpty
        }
        var holey = Self.inventory
        holey.segments.removeAll { $0.firstTxid == 11 }
        // The span stops at the hole: the snapshot at txid 15 needs txid 15 from the missing segment.
        #expect(RestorePlanner(inventory: holey).span(of: Self.first)?.lastTxid == 10)
    }

    @Test("a snapshot whose segments are not in the store yet is not a restore point")
    func snapshotAheadOfItsSegments() throws {
        var inventory = Self.inventory
        inventory.snapshots.append(Self.snapshot(Self.second, from: 30, usable: 40, ms: 7000))
        let planner = RestorePlanner(inventory: inventory)
        #expect(planner.span(of: Self.second)?.lastTxid == 30)
        #expect(try planner.plan(.latest).lastTxid == 30)
        #expect { try planner.plan(.txid(35)) } throws: { ($0 as? WalshipError)?.code == .targetOutsideWindow }
        // A time after that snapshot restores the latest reachable point and says so.
        let late = try planner.plan(.time(8000))
        #expect(late.clampedToLatest && late.lastTxid == 30)
    }

    @Test("a target in a hole inside a generation fails instead of restoring an older state silently")
    func holeInsideGeneration() throws {
        var holey = Self.inventory
        holey.segments.removeAll { $0.firstTxid == 11 }
        holey.snapshots.append(Self.snapshot(Self.first, from: 20, usable: 20, ms: 3100))
        let planner = RestorePlanner(inventory: holey)
        #expect { try planner.plan(.time(2800)) } throws: { ($0 as? WalshipError)?.code == .targetInGap }
        #expect {
            try planner.plan(.txid(12))
        } throws: { error in
            let error = error as? WalshipError
            return error?.code == .objectCorrupt && error!.message.contains("txids 11 to 19 are missing")
        }
        // --nearest-before restores the point before the hole (found by review: it was ignored).
        #expect(try planner.plan(.txid(12), options: .init(nearestBefore: true)).lastTxid == 10)
        #expect(try planner.plan(.time(2800), options: .init(nearestBefore: true)).lastTxid == 10)
        #expect(try planner.plan(.time(3100)).snapshot.usableTxid == 20)
    }

    @Test(
        "segments after a hole that no snapshot bridges make latest, later txids and later times fail naming the hole (found by review: latest restored the point before it)"
    )
    func holeBeforeTheLatest() throws {
        var holey = Self.inventory
        holey.segments.append(Self.segment(Self.second, 41, 50, 7000, 8000))  // 31...40 lost
        let planner = RestorePlanner(inventory: holey)
        for target: RestorePlanner.Target in [.latest, .txid(45), .time(9000)] {
            #expect {
                try planner.plan(target)
            } throws: { error in
                let error = error as? WalshipError
                return error?.code == .objectNotFound && error!.message.contains("txids 31 to 40 are missing")
            }
        }
        #expect(try planner.plan(.latest, options: .init(nearestBefore: true)).lastTxid == 30)
        #expect(planner.missingTxids(in: Self.second) == [31...40])
        // A txid past every segment is outside the window, not in that hole (found by review).
        #expect { try planner.plan(.txid(99)) } throws: { ($0 as? WalshipError)?.code == .targetOutsideWindow }

        // The newest generation's first segments lost: latest fails instead of restoring the
        // previous generation (found by review).
        var lostStart = Self.inventory
        lostStart.snapshots.removeAll { $0.generation == Self.second }
        lostStart.snapshots.append(Self.snapshot(Self.second, from: 20, usable: 25, ms: 5000))
        lostStart.segments.removeAll { $0.firstTxid == 21 }
        lostStart.segments.append(Self.segment(Self.second, 31, 40, 6000, 7000))
        #expect(RestorePlanner(inventory: lostStart).span(of: Self.second) == nil)
        #expect {
            try RestorePlanner(inventory: lostStart).plan(.latest)
        } throws: { ($0 as? WalshipError)?.code == .objectNotFound }
        #expect(planner.missingTxids(in: Self.first).isEmpty)
        #expect(try planner.plan(.txid(25)).lastTxid == 25)

        // A hole in an older generation: a txid in it or after it is missing objects (exit 9),
        // not a gap between generations (found by review: it was exit 7).
        var olderHole = Self.inventory
        olderHole.segments.removeAll { $0.firstTxid == 11 }
        olderHole.segments.append(Self.segment(Self.first, 16, 20, 2600, 3000))  // 11...15 lost
        let older = RestorePlanner(inventory: olderHole)
        for txid: UInt64 in [12, 18] {
            #expect {
                try older.plan(.txid(txid))
            } throws: { error in
                let error = error as? WalshipError
                return error?.code == .objectNotFound && error!.message.contains("txids 11 to 15 are missing")
            }
            #expect(try older.plan(.txid(txid), options: .init(nearestBefore: true)).lastTxid == 10)
        }
        #expect(try older.plan(.txid(25)).generation == Self.second)
        #expect(try planner.plan(.time(5500)).untilMs == 5500)
    }

    @Test("overlapping segments in one generation (two agents continuing it) are found at their first shared txid")
    func overlappingSegments() {
        let planner = RestorePlanner(
            inventory: ReplicaInventory(
                snapshots: [Self.snapshot(Self.first, from: 0, usable: 2, ms: 1000)],
                segments: [
                    Self.segment(Self.first, 1, 10, 1000, 2000), Self.segment(Self.first, 11, 20, 2000, 3000),
                    Self.segment(Self.first, 15, 25, 2500, 3500),
                ]))
        #expect(planner.overlap(in: Self.first) == 15)
        let clean = RestorePlanner(
            inventory: ReplicaInventory(
                snapshots: [Self.snapshot(Self.first, from: 0, usable: 2, ms: 1000)],
                segments: [Self.segment(Self.first, 1, 10, 1000, 2000), Self.segment(Self.first, 11, 20, 2000, 3000)]))
        #expect(clean.overlap(in: Self.first) == nil)
    }
}
