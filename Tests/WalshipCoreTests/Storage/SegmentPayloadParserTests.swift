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
}
