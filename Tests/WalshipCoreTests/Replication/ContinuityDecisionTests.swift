import Testing

@testable import WalshipCore

/// Every row of DESIGN.md section 3's continuity rules that `ContinuityDecision` holds, without
/// files: the agent's state, one LIST, the spool, the database file's identity, then what the WAL
/// and the file show.
@Suite("Continuity decision")
struct ContinuityDecisionTests {
    static let layout = ReplicaLayout(prefix: "")
    /// Generations created at 1000, 5000 and 7000 ms.
    static let older = GenerationID(1000 << 20)
    static let saved = GenerationID(5000 << 20)
    static let newer = GenerationID(7000 << 20)
    static let file = FileIdentity(device: 1, inode: 42)
    static let location = "s3://bucket/app"

    /// The agent's state: generation `saved`, started after txid 10, on inode 42.
    static let state = ReplicaState(
        generation: saved, reason: 2, baseTxid: 10, baseCursor: .noWAL(pageSize: 4096), predecessorTxid: 9,
        startedMs: 5000, databaseIdentity: file, replica: location)

    static func segment(
        _ generation: GenerationID, _ first: UInt64, _ last: UInt64, ms: UInt64 = 6000
    ) -> ReplicaLayout.SegmentEntry {
        .init(
            key: layout.segmentKey(generation: generation, firstTxid: first, lastTxid: last, firstMs: ms, lastMs: ms),
            generation: generation, firstTxid: first, lastTxid: last, firstMs: ms, lastMs: ms, size: 100)
    }

    static func snapshot(_ generation: GenerationID, usable: UInt64, ms: UInt64 = 5000) -> ReplicaLayout.SnapshotEntry {
        .init(
            key: layout.snapshotKey(generation: generation, usableTxid: usable, fromTxid: usable, takenMs: ms),
            generation: generation, usableTxid: usable, fromTxid: usable, takenMs: ms, size: 1000)
    }

    static func header(_ generation: GenerationID, _ first: UInt64, _ last: UInt64) -> ObjectHeader {
        ObjectHeader(
            kind: .segment, codec: .zstd, pageSize: 4096, generation: generation.value, firstTxid: first,
            lastTxid: last, firstMs: 6000, lastMs: 6000)
    }

    /// A replica holding the saved generation's snapshot at txid 11 and segments 11-20 and 21-30.
    static let inventory = ReplicaInventory(
        snapshots: [snapshot(older, usable: 1, ms: 1000), snapshot(saved, usable: 11)],
        segments: [segment(older, 1, 10, ms: 2000), segment(saved, 11, 20), segment(saved, 21, 30)])

    /// The facts of an agent that stopped cleanly after shipping through txid 30.
    static func facts(_ change: (inout ContinuityDecision.Facts) -> Void = { _ in }) -> ContinuityDecision.Facts {
        var facts = ContinuityDecision.Facts(
            saved: state, replicaLocation: location, restored: nil, inventory: inventory, spooled: [],
            newestStoredSegment: header(saved, 21, 30), savedGenerationAbandoned: false, databaseFile: file)
        change(&facts)
        return facts
    }

    static func reason(_ decision: ContinuityDecision) -> ObjectHeader.GenerationReason? {
        if case .newGeneration(let reason, _) = decision { return reason }
        return nil
    }

    @Test("a clean stop resumes after the newest stored segment")
    func resumesAfterStoredSegment() {
        let decision = ContinuityDecision.beforeReading(Self.facts())
        #expect(decision == .resume(.init(state: Self.state, newestSegment: Self.header(Self.saved, 21, 30), txid: 30)))
    }

    @Test("a segment still in the spool is the position to resume from, not the store's newest")
    func resumesAfterSpooledSegment() {
        let spooled = Self.header(Self.saved, 31, 35)
        let decision = ContinuityDecision.beforeReading(Self.facts { $0.spooled = [spooled] })
        #expect(decision == .resume(.init(state: Self.state, newestSegment: spooled, txid: 35)))
    }

    @Test("a generation that shipped no segment yet resumes at its base txid")
    func resumesAtBase() {
        let inventory = ReplicaInventory(snapshots: [Self.snapshot(Self.saved, usable: 10)])
        let decision = ContinuityDecision.beforeReading(
            Self.facts {
                $0.inventory = inventory
                $0.newestStoredSegment = nil
            })
        #expect(decision == .resume(.init(state: Self.state, newestSegment: nil, txid: 10)))
    }

    @Test(
        "each way a generation ends before anything is read",
        arguments: [
            ("no state, empty replica", ObjectHeader.GenerationReason.firstStart),
            ("no state, replica has generations", .continuityLost),
            ("state written for another replica URL", .continuityLost),
            ("restored from this replica", .restored),
            ("the uploader abandoned the generation (object conflict)", .objectConflict),
            ("two agents continued the generation (overlapping segments)", .forked),
            ("another generation shipped the same txids at the same time", .forked),
            ("a newer generation shipped the same txids at the same time", .forked),
            ("the replica has a newer generation", .continuityLost),
            ("the store holds txids past this agent's position", .continuityLost),
            ("the spool holds txids past the store's newest segment of another generation", .continuityLost),
            ("the database file is another inode", .databaseReplaced),
            ("the database file is gone", .databaseReplaced),
        ])
    func newGeneration(_ row: String, _ expected: ObjectHeader.GenerationReason) {
        let facts: ContinuityDecision.Facts
        switch row {
        case "no state, empty replica":
            facts = Self.facts {
                $0.saved = nil
                $0.inventory = ReplicaInventory()
                $0.newestStoredSegment = nil
            }
        case "no state, replica has generations": facts = Self.facts { $0.saved = nil }
        case "state written for another replica URL": facts = Self.facts { $0.replicaLocation = "s3://bucket/other" }
        case "restored from this replica":
            facts = Self.facts {
                $0.restored = RestoredMarker(
                    replica: Self.location, databaseID: nil, generation: Self.older, txid: 7, restoredMs: 9000)
            }
        case "the uploader abandoned the generation (object conflict)":
            facts = Self.facts { $0.savedGenerationAbandoned = true }
        case "two agents continued the generation (overlapping segments)":
            facts = Self.facts { $0.inventory.segments.append(Self.segment(Self.saved, 25, 27, ms: 6100)) }
        case "another generation shipped the same txids at the same time":
            // The older generation's agent went on after this one started, at this one's txids.
            facts = Self.facts { $0.inventory.segments.append(Self.segment(Self.older, 11, 14, ms: 6500)) }
        case "a newer generation shipped the same txids at the same time":
            // This agent went on after another one started a newer generation at these txids.
            facts = Self.facts {
                $0.inventory.snapshots.append(Self.snapshot(Self.newer, usable: 25, ms: 7000))
                $0.inventory.segments.append(Self.segment(Self.saved, 31, 32, ms: 7500))
                $0.newestStoredSegment = Self.header(Self.saved, 31, 32)
            }
        case "the replica has a newer generation":
            facts = Self.facts { $0.inventory.snapshots.append(Self.snapshot(Self.newer, usable: 31, ms: 7000)) }
        case "the store holds txids past this agent's position":
            // The newest stored segment the agent knows of ends at 30; a snapshot names 40.
            facts = Self.facts { $0.inventory.snapshots.append(Self.snapshot(Self.saved, usable: 40, ms: 7000)) }
        case "the spool holds txids past the store's newest segment of another generation":
            facts = Self.facts { $0.spooled = [Self.header(Self.older, 31, 33)] }
        case "the database file is another inode":
            facts = Self.facts { $0.databaseFile = FileIdentity(device: 1, inode: 43) }
        default:
            facts = Self.facts { $0.databaseFile = nil }
        }
        #expect(Self.reason(ContinuityDecision.beforeReading(facts)) == expected, "\(row)")
    }

    @Test("a restored database starts a new generation even with a resumable state")
    func restoredWinsOverState() {
        let marker = RestoredMarker(
            replica: Self.location, databaseID: nil, generation: Self.saved, txid: 20, restoredMs: 9000)
        guard
            case .newGeneration(.restored, let why) = ContinuityDecision.beforeReading(
                Self.facts { $0.restored = marker })
        else {
            Issue.record("expected a restored generation")
            return
        }
        #expect(why.contains("txid 20"))
    }

    @Test("a fork names the txid where the branches overlap")
    func forkNamesBranch() {
        let facts = Self.facts { $0.inventory.segments.append(Self.segment(Self.saved, 25, 31, ms: 6100)) }
        guard case .newGeneration(.forked, let why) = ContinuityDecision.beforeReading(facts) else {
            Issue.record("expected a fork")
            return
        }
        #expect(why.contains("from txid 25"))
    }

    @Test("the txid a new generation continues after is the highest anything names")
    func lastTxid() {
        #expect(Self.facts().lastTxid == 30)
        #expect(Self.facts { $0.spooled = [Self.header(Self.saved, 31, 35)] }.lastTxid == 35)
        let fresh = Self.facts {
            $0.inventory = ReplicaInventory()
            $0.newestStoredSegment = nil
        }
        #expect(fresh.lastTxid == 10)
        // A state for another replica says nothing about this one's txids.
        let moved = Self.facts {
            $0.inventory = ReplicaInventory()
            $0.replicaLocation = "s3://bucket/other"
        }
        #expect(moved.lastTxid == 0)
    }

    @Test("after the WAL: a changed page size ends the generation without reading the WAL")
    func pageSizeChanged() {
        var read = false
        let decision = ContinuityDecision.afterWAL(recordedPageSize: 4096, databasePageSize: 8192) {
            read = true
            return .bridges
        }
        #expect(Self.reason(decision) == .pageSizeChanged)
        #expect(!read)
    }

    @Test("after the WAL: a WAL that bridges the break continues; a broken one asks the database file")
    func walEvidence() {
        #expect(
            ContinuityDecision.afterWAL(recordedPageSize: 4096, databasePageSize: 4096) { .bridges }
                == .continueGeneration)
        #expect(
            ContinuityDecision.afterWAL(recordedPageSize: 4096, databasePageSize: 4096) { .broken } == .checkContent)
    }

    @Test(
        "by content: the same or soundly changed file continues; a broken one is database_changed; no proof is continuity_lost"
    )
    func contentEvidence() {
        #expect(ContinuityDecision.byContent(.continued) == .continueGeneration)
        #expect(
            ContinuityDecision.byContent(.changed("page 3 differs"))
                == .newGeneration(.databaseChanged, "page 3 differs"))
        #expect(Self.reason(ContinuityDecision.byContent(.unproven)) == .continuityLost)
    }

    // MARK: The WAL position

    static let walHeader = WALFormat.Header(
        bigEndianChecksum: false, version: 3_007_000, pageSize: 4096, checkpointSequence: 3, salt1: 0xAAAA,
        salt2: 0xBBBB, checksum: .init(1, 2))
    /// Shipped through frame 12 of that WAL.
    static let position = WALCursor(
        salt1: 0xAAAA, salt2: 0xBBBB, frame: 12, checksum: .init(77, 88), pageSize: 4096, bigEndianChecksum: false)
    static let commitFrame = WALFormat.FrameHeader(
        pageNumber: 1, databaseSize: 9, salt1: 0xAAAA, salt2: 0xBBBB, checksum: .init(77, 88))

    @Test("the WAL holds the shipped position: same salts and page size, a commit frame with the same checksum there")
    func walHoldsPosition() {
        #expect(ContinuityDecision.walHolds(Self.position, header: Self.walHeader, frameAtPosition: Self.commitFrame))
        var atStart = WALCursor(header: Self.walHeader)
        #expect(ContinuityDecision.walHolds(atStart, header: Self.walHeader, frameAtPosition: nil))
        atStart.checksum = .init(9, 9)
        #expect(!ContinuityDecision.walHolds(atStart, header: Self.walHeader, frameAtPosition: nil))
    }

    @Test(
        "the WAL no longer holds the shipped position",
        arguments: [
            "no WAL now", "no WAL when shipped", "other salts (restarted)", "another page size",
            "a shorter WAL under the same salts", "same salts, another checksum (rewritten after a restart)",
            "the frame there is not a commit", "the frame there has other salts",
        ])
    func walLost(_ row: String) {
        var position = Self.position
        var header: WALFormat.Header? = Self.walHeader
        var frame: WALFormat.FrameHeader? = Self.commitFrame
        switch row {
        case "no WAL now": header = nil
        case "no WAL when shipped": position = .noWAL(pageSize: 4096)
        case "other salts (restarted)": header?.salt1 += 1
        case "another page size": header?.pageSize = 8192
        case "a shorter WAL under the same salts": frame = nil
        case "same salts, another checksum (rewritten after a restart)": frame?.checksum = .init(77, 89)
        case "the frame there is not a commit": frame?.databaseSize = 0
        default: frame?.salt2 += 1
        }
        #expect(!ContinuityDecision.walHolds(position, header: header, frameAtPosition: frame), "\(row)")
    }

    @Test("a catch-up bridges the break only when the WAL header after it shows the salts it ended with")
    func catchUpFinalCheck() {
        #expect(ContinuityDecision.catchUpBridges(endedWith: (0xAAAA, 0xBBBB), headerAfter: Self.walHeader))
        #expect(!ContinuityDecision.catchUpBridges(endedWith: (0xAAAA, 0xBBBC), headerAfter: Self.walHeader))
        #expect(!ContinuityDecision.catchUpBridges(endedWith: (0xAAAA, 0xBBBB), headerAfter: nil))
    }
}
