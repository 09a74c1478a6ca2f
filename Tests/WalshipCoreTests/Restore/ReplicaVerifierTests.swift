import Testing

@testable import WalshipCore

@Suite("ReplicaVerifier chain links")
struct ReplicaVerifierTests {
    static let generation = GenerationID(0x1a24_ae2c_86a4_b887)

    /// A segment of txids `first...last` whose payload hash is `[id]` and which names the
    /// payload `[previous]` (nil: none).
    static func segment(
        _ first: UInt64, _ last: UInt64, id: UInt8, previous: UInt8?
    ) -> (
        ReplicaLayout.SegmentEntry, ObjectHeader
    ) {
        let key = "generations/\(generation)/segments/\(first)-\(last)-\(id)"
        let entry = ReplicaLayout.SegmentEntry(
            key: key, generation: generation, firstTxid: first, lastTxid: last, firstMs: 0, lastMs: 0, size: 1)
        let header = ObjectHeader(
            kind: .segment, codec: .none, pageSize: 4096, generation: generation.value, firstTxid: first,
            lastTxid: last, firstMs: 0, lastMs: 0, payloadSHA256: Array(repeating: id, count: 32),
            predecessorTxid: first - 1,
            predecessorSHA256: previous.map { Array(repeating: $0, count: 32) } ?? Array(repeating: 0, count: 32))
        return (entry, header)
    }

    static func findings(_ segments: [(ReplicaLayout.SegmentEntry, ObjectHeader)]) -> [ReplicaVerifier.Finding] {
        let inventory = ReplicaInventory(segments: segments.map(\.0).sorted { $0.firstTxid < $1.firstTxid })
        let headers = Dictionary(uniqueKeysWithValues: segments.map { ($0.0.key, $0.1) })
        return ReplicaVerifier.chainFindings(inventory: inventory, headers: headers)
    }

    @Test("a linked chain has no finding; a segment naming another payload is one")
    func linkedAndBroken() {
        #expect(
            Self.findings([Self.segment(1, 5, id: 1, previous: nil), Self.segment(6, 9, id: 2, previous: 1)]).isEmpty)
        let broken = Self.findings([Self.segment(1, 5, id: 1, previous: nil), Self.segment(6, 9, id: 2, previous: 7)])
        #expect(broken.map(\.kind) == [.chain])
    }

    @Test("in a generation two agents continued, each branch links to its own segment: no chain finding")
    func forkedBranchesLink() {
        let segments = [
            Self.segment(1, 5, id: 1, previous: nil),
            // Two agents from txid 6 on: branch A (ids 2, 3) and branch B (ids 4, 5).
            Self.segment(6, 7, id: 2, previous: 1), Self.segment(8, 9, id: 3, previous: 2),
            Self.segment(6, 7, id: 4, previous: 1), Self.segment(8, 9, id: 5, previous: 4),
        ]
        #expect(Self.findings(segments).isEmpty)
    }
}
