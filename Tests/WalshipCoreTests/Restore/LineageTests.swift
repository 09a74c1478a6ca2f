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
}
