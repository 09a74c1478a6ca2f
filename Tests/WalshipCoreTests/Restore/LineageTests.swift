import Testing

@testable import WalshipCore

@Suite("Lineage and forks")
struct LineageTests {
    static let a = GenerationID(1)
    static let b = GenerationID(2)
    static let c = GenerationID(3)
    static let d = GenerationID(4)

    @Test("a linear lineage, where each generation ends at its successor's branch point, has no fork")
    func linearHasNoFork() {
        let lineage = Lineage(
            links: [
                Self.a: .init(generation: nil, txid: 0), Self.b: .init(generation: Self.a, txid: 50),
                Self.c: .init(generation: Self.b, txid: 90),
            ],
            lastTxids: [Self.a: 50, Self.b: 90, Self.c: 120])
        #expect(lineage.forks.isEmpty)
        #expect(lineage.fork(containing: Self.b) == nil)
    }

    @Test("two generations naming one predecessor are a fork")
    func samePredecessorIsAFork() {
        let lineage = Lineage(
            links: [
                Self.a: .init(generation: nil, txid: 0), Self.b: .init(generation: Self.a, txid: 50),
                Self.c: .init(generation: Self.a, txid: 50),
            ],
            lastTxids: [Self.a: 50, Self.b: 70, Self.c: 60])
        #expect(lineage.forks == [[Self.b, Self.c]])
        #expect(lineage.fork(containing: Self.c) == [Self.b, Self.c])
        #expect(lineage.fork(containing: Self.a) == nil)
    }

    @Test("two roots are a fork")
    func twoRootsAreAFork() {
        let lineage = Lineage(
            links: [Self.a: .init(generation: nil, txid: 0), Self.b: .init(generation: nil, txid: 0)],
            lastTxids: [Self.a: 5, Self.b: 5])
        #expect(lineage.forks == [[Self.a, Self.b]])
    }

    @Test("a predecessor that kept shipping after its successor branched off is a fork with it, merged with others")
    func predecessorContinuedIsAFork() {
        let lineage = Lineage(
            links: [
                Self.a: .init(generation: nil, txid: 0), Self.b: .init(generation: Self.a, txid: 50),
                Self.c: .init(generation: Self.b, txid: 80), Self.d: .init(generation: Self.b, txid: 80),
            ],
            lastTxids: [Self.a: 60, Self.b: 80, Self.c: 90, Self.d: 85])
        #expect(lineage.forks == [[Self.a, Self.b], [Self.c, Self.d]])
        let chained = Lineage(
            links: [
                Self.a: .init(generation: nil, txid: 0), Self.b: .init(generation: Self.a, txid: 50),
                Self.c: .init(generation: Self.a, txid: 50),
            ],
            lastTxids: [Self.a: 70, Self.b: 60, Self.c: 60])
        #expect(chained.forks == [[Self.a, Self.b, Self.c]])
    }

    @Test(
        "a generation restored from an earlier point is a fork with its predecessor only when the predecessor shipped those txids after it was created"
    )
    func restoredConcurrentIsAFork() {
        // Generation ids carry their creation time (milliseconds << 20).
        let original = GenerationID(1_000 << 20)
        let restored = GenerationID(2_000 << 20)
        let links: [GenerationID: Lineage.Link] = [
            original: .init(generation: nil, txid: 0),
            restored: .init(generation: original, txid: 10, reason: .restored),
        ]
        // A rollback: every point of the original came before the restored copy started.
        let rollback = Lineage(
            links: links, lastTxids: [original: 20, restored: 25], firstTxids: [original: 1, restored: 10],
            activity: [
                original: [.init(ms: 1_100, txid: 10), .init(ms: 1_900, txid: 20)],
                restored: [.init(ms: 2_000, txid: 10), .init(ms: 2_100, txid: 25)],
            ])
        #expect(rollback.forks.isEmpty)
        // A drill while the original runs on: it ships txid 21 after the copy started.
        var drill = rollback
        drill.activity[original]!.append(.init(ms: 2_050, txid: 21))
        #expect(drill.forks == [[original, restored]])
        // The original shipping past the copy's txids only before it started is no fork either.
        var before = rollback
        before.activity[original]!.append(.init(ms: 1_950, txid: 30))
        #expect(before.forks.isEmpty)
    }

    @Test(
        "the later generations of an agent racing another one, above txids the other ships meanwhile, are forks with it"
    )
    func racingAgentsAreForks() {
        let other = GenerationID(1_000 << 20)
        let first = GenerationID(2_000 << 20)
        let second = GenerationID(3_000 << 20)
        let lineage = Lineage(
            links: [
                other: .init(generation: nil, txid: 0), first: .init(generation: other, txid: 100),
                second: .init(generation: first, txid: 120),
            ],
            lastTxids: [other: 200, first: 120, second: 130], firstTxids: [other: 1, first: 100, second: 121],
            activity: [
                other: [.init(ms: 1_500, txid: 100), .init(ms: 3_500, txid: 200)],
                first: [.init(ms: 2_000, txid: 100), .init(ms: 2_900, txid: 120)],
                second: [.init(ms: 3_000, txid: 121), .init(ms: 3_100, txid: 130)],
            ])
        #expect(lineage.forks == [[other, first, second]])
    }
}
