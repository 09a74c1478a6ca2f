import Foundation
import Testing

@testable import WalshipCore

@Suite("Segment payload parser")
struct SegmentPayloadParserTests {
    static func payload(count: Int, pageSize: Int) -> [UInt8] {
        let transactions = (0..<count).map {
            SegmentFormat.Transaction(txid: UInt64(10 + $0), commitMs: 1000, databasePages: 2, frameCount: 1)
        }
        var bytes = SegmentFormat.encodeIndex(transactions)
        for _ in 0..<count { bytes += [0, 0, 0, 2] + [UInt8](repeating: 7, count: pageSize) }
        return bytes
    }

    static func parse(_ bytes: [UInt8], expectedCount: Int?) throws -> Int {
        var parser = SegmentPayloadParser(pageSize: 512, key: "k", expectedCount: expectedCount)
        var pages = 0
        try bytes.withUnsafeBytes { all in
            // In small chunks, as decompression hands them on.
            for start in stride(from: 0, to: all.count, by: 100) {
                try parser.feed(UnsafeRawBufferPointer(rebasing: all[start..<min(start + 100, all.count)])) {
                    if case .page = $0 { pages += 1 }
                }
            }
        }
        try parser.finish()
        return pages
    }

    @Test("a payload whose transaction count matches the header parses in any chunking")
    func matchingCount() throws {
        #expect(try Self.parse(Self.payload(count: 3, pageSize: 512), expectedCount: 3) == 3)
    }

    @Test(
        "a transaction count that differs from the header's is corrupt before the index is buffered (found by review: a flipped byte made restore hold 165 MB)"
    )
    func corruptCount() throws {
        var bytes = Self.payload(count: 3, pageSize: 512)
        bytes[1] ^= 0x5a  // The count's second byte: about 5.9 million transactions.
        #expect {
            try Self.parse(bytes, expectedCount: 3)
        } throws: { error in
            (error as? WalshipError)?.code == .objectCorrupt
                && (error as! WalshipError).message.contains("the header says 3")
        }
    }

    static let goldenTransactions = [
        SegmentFormat.Transaction(
            txid: 0x0102_0304_0506_0708, commitMs: 0x1112_1314_1516_1718, databasePages: 0x2122_2324, frameCount: 3,
            isLate: true),
        SegmentFormat.Transaction(
            txid: 0x0102_0304_0506_0709, commitMs: 0x1112_1314_1516_1719, databasePages: 0x2122_2325, frameCount: 0,
            checksum: 0x3132_3334_3536_3738, isFromDatabaseFile: true),
    ]

    @Test(
        "segment indexes of format versions 1 and 2 are stable (golden files) and parse back; version 1 carries no checksums",
        arguments: [1, 2] as [UInt16])
    func indexGolden(version: UInt16) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Golden/segment-index-v\(version).hex")
        let expected = try String(contentsOf: url, encoding: .utf8).filter { !$0.isWhitespace }
        let index = SegmentFormat.encodeIndex(Self.goldenTransactions, version: version)
        #expect(Hex.string(index) == expected)
        var payload = index
        for _ in 0..<3 { payload += [0, 0, 0, 1] + [UInt8](repeating: 9, count: 512) }
        var parser = SegmentPayloadParser(pageSize: 512, key: "k", expectedCount: 2, version: version)
        var parsed: [SegmentFormat.Transaction] = []
        try payload.withUnsafeBytes { bytes in
            try parser.feed(bytes) { if case .index(let transactions) = $0 { parsed = transactions } }
        }
        try parser.finish()
        var expectedTransactions = Self.goldenTransactions
        if version == 1 {
            expectedTransactions[1].checksum = nil
            expectedTransactions[1].isFromDatabaseFile = false
        }
        #expect(parsed == expectedTransactions)
    }
}
