import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Retention policy")
struct RetentionPolicyTests {
    static let hour: UInt64 = 3_600_000

    static func snapshot(_ generation: UInt64, at hours: UInt64, txid: UInt64) -> ReplicaLayout.SnapshotEntry {
        ReplicaLayout.SnapshotEntry(
            key: "g\(generation)/snapshot@\(hours)h", generation: GenerationID(generation), usableTxid: txid,
            fromTxid: txid, takenMs: hours * hour, size: 1000)
    }

    static func segment(
        _ generation: UInt64, txids: ClosedRange<UInt64>, hours: ClosedRange<UInt64>
    ) -> ReplicaLayout.SegmentEntry {
        ReplicaLayout.SegmentEntry(
            key: "g\(generation)/segment-\(txids.lowerBound)-\(txids.upperBound)", generation: GenerationID(generation),
            firstTxid: txids.lowerBound, lastTxid: txids.upperBound, firstMs: hours.lowerBound * hour,
            lastMs: hours.upperBound * hour, size: 10)
    }

    /// One generation: snapshots at 0 h, 24 h and 48 h, a segment a day between them.
    static let oneGeneration = ReplicaInventory(
        snapshots: [snapshot(1, at: 0, txid: 0), snapshot(1, at: 24, txid: 100), snapshot(1, at: 48, txid: 200)],
        segments: [
            segment(1, txids: 1...100, hours: 1...24), segment(1, txids: 101...200, hours: 25...48),
            segment(1, txids: 201...300, hours: 49...72),
        ])

    static func plan(
        _ inventory: ReplicaInventory, retention: UInt64, nowHours: Double, forks: [[GenerationID]] = []
    )
        -> RetentionPolicy.Plan
    {
        RetentionPolicy(retention: .seconds(Int64(retention * 3600)), grace: .seconds(3600))
            .plan(inventory: inventory, forks: forks, nowMs: UInt64(nowHours * Double(hour)))
    }

    @Test(
        "a chain goes whole once a newer snapshot is retention plus grace old; the anchor and every later object stay",
        arguments: [
            // now, deleted keys, next due (hours)
            (40.0, [String](), 49.0),
            (72.0, ["g1/snapshot@0h", "g1/segment-1-100"], 73.0),
            (74.0, ["g1/snapshot@0h", "g1/snapshot@24h", "g1/segment-1-100", "g1/segment-101-200"], nil),
            (500.0, ["g1/snapshot@0h", "g1/snapshot@24h", "g1/segment-1-100", "g1/segment-101-200"], nil),
        ] as [(Double, [String], Double?)])
    func chainsGoWhole(now: Double, deleted: [String], nextDue: Double?) {
        let plan = Self.plan(Self.oneGeneration, retention: 24, nowHours: now)
        #expect(plan.problem == nil)
        #expect(Set(plan.delete) == Set(deleted), "\(plan.delete)")
        #expect(plan.nextDueMs == nextDue.map { UInt64($0 * Double(Self.hour)) })
        #expect(plan.windowStartMs == UInt64((now - 24) * Double(Self.hour)))
        // The newest snapshot and everything after it are never deleted.
        #expect(!plan.delete.contains("g1/snapshot@48h") && !plan.delete.contains("g1/segment-201-300"))
    }

    @Test(
        "the grace period: at exactly retention plus grace after the newer snapshot the chain goes, a millisecond before it stays"
    )
    func gracePeriod() {
        let policy = RetentionPolicy(retention: .seconds(24 * 3600), grace: .seconds(3600))
        let before = policy.plan(inventory: Self.oneGeneration, nowMs: 73 * Self.hour - 1)
        let at = policy.plan(inventory: Self.oneGeneration, nowMs: 73 * Self.hour)
        #expect(!before.delete.contains("g1/snapshot@24h"))
        #expect(at.delete.contains("g1/snapshot@24h"))
    }

    @Test("a segment that reaches past the anchor's txid is kept with it")
    func bridgingSegmentKept() {
        let inventory = ReplicaInventory(
            snapshots: [Self.snapshot(1, at: 0, txid: 0), Self.snapshot(1, at: 24, txid: 150)],
            segments: [
                Self.segment(1, txids: 1...100, hours: 1...12), Self.segment(1, txids: 101...200, hours: 13...30),
                Self.segment(1, txids: 201...300, hours: 31...40),
            ])
        let plan = Self.plan(inventory, retention: 24, nowHours: 60)
        #expect(Set(plan.delete) == ["g1/snapshot@0h", "g1/segment-1-100"], "\(plan.delete)")
    }

    @Test("an older generation goes whole only once a newer one's first restore point is retention plus grace old")
    func generationGap() {
        let inventory = ReplicaInventory(
            snapshots: [Self.snapshot(1, at: 0, txid: 0), Self.snapshot(2, at: 12, txid: 60)],
            segments: [Self.segment(1, txids: 1...50, hours: 1...10), Self.segment(2, txids: 61...90, hours: 13...80)])
        let kept = Self.plan(inventory, retention: 72, nowHours: 80)
        #expect(kept.delete.isEmpty)
        #expect(kept.nextDueMs == 85 * Self.hour)
        let gone = Self.plan(inventory, retention: 24, nowHours: 80)
        #expect(Set(gone.delete) == ["g1/snapshot@0h", "g1/segment-1-50"], "\(gone.delete)")
        #expect(gone.byGeneration[GenerationID(1)] == RetentionPolicy.Amount(objects: 2, bytes: 1010))
        #expect(gone.bytes == 1010)
        // The newest generation is never deleted, however old.
        let late = Self.plan(inventory, retention: 1, nowHours: 10_000)
        #expect(!late.delete.contains("g2/snapshot@12h"))
    }

    @Test("a fork's generations are never pruned inside, and go all together once every one is superseded")
    func forks() {
        let inventory = ReplicaInventory(
            snapshots: [
                Self.snapshot(1, at: 0, txid: 0), Self.snapshot(2, at: 10, txid: 20),
                Self.snapshot(2, at: 20, txid: 40),
                Self.snapshot(3, at: 11, txid: 21), Self.snapshot(4, at: 50, txid: 100),
            ],
            segments: [
                Self.segment(1, txids: 1...19, hours: 1...9), Self.segment(2, txids: 21...60, hours: 11...30),
                Self.segment(3, txids: 22...70, hours: 12...40), Self.segment(4, txids: 101...200, hours: 51...90),
            ])
        let fork = [GenerationID(2), GenerationID(3)]
        // Cutoff 45 h: generation 4 starts at 50 h, so the fork's branches stay, whole (generation
        // 2 would otherwise lose its 10 h snapshot to the one at 20 h).
        let early = Self.plan(inventory, retention: 24, nowHours: 70, forks: [fork])
        #expect(Set(early.delete) == ["g1/snapshot@0h", "g1/segment-1-19"], "\(early.delete)")
        // Cutoff 65 h: every branch is superseded by generation 4: both go.
        let late = Self.plan(inventory, retention: 24, nowHours: 90, forks: [fork])
        #expect(
            Set(late.delete)
                == [
                    "g1/snapshot@0h", "g1/segment-1-19", "g2/snapshot@10h", "g2/snapshot@20h", "g2/segment-21-60",
                    "g3/snapshot@11h", "g3/segment-22-70",
                ], "\(late.delete)")
    }

    @Test("a generation two agents continued (overlapping segments) is never pruned inside")
    func overlapIsAFork() {
        var inventory = Self.oneGeneration
        inventory.segments.append(Self.segment(1, txids: 150...260, hours: 30...50))
        let plan = Self.plan(inventory, retention: 24, nowHours: 100)
        #expect(plan.delete.isEmpty, "\(plan.delete)")
    }

    @Test("two buckets with different retention get different plans from the same objects")
    func perBucketRetention() {
        let short = Self.plan(Self.oneGeneration, retention: 24, nowHours: 74)
        let long = Self.plan(Self.oneGeneration, retention: 48, nowHours: 74)
        #expect(short.delete.count == 4)
        #expect(Set(long.delete) == ["g1/snapshot@0h", "g1/segment-1-100"], "\(long.delete)")
        let none = Self.plan(Self.oneGeneration, retention: 100_000, nowHours: 74)
        #expect(none.delete.isEmpty && none.nextDueMs != nil)
    }

    @Test("objects the layout does not recognize are not in the inventory, so no plan names them")
    func unknownKeysUntouched() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileObjectStore(root: directory.path, create: true)
        let layout = ReplicaLayout(prefix: "")
        try await store.put("generations/notes.txt", body: .bytes(Array("keep me".utf8)), ifNoneMatch: false)
        try await store.put(
            "generations/0000000000000001/snapshots/junk", body: .bytes([1, 2, 3]), ifNoneMatch: false)
        let inventory = try await ReplicaInventory.load(store: store, layout: layout)
        #expect(inventory.isEmpty)
        let plan = RetentionPolicy(retention: .seconds(1)).plan(inventory: inventory, nowMs: 1 << 50)
        #expect(plan.delete.isEmpty)
    }
}
