import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Coalesced page writes")
struct PageWritesTests {
    /// A file as pages: what a restore's writes and truncations leave.
    struct ModelFile: Equatable {
        var pages: [UInt32: [UInt8]] = [:]
        var size: UInt32 = 0

        mutating func write(_ pageNumber: UInt32, _ bytes: [UInt8]) {
            pages[pageNumber] = bytes
            size = max(size, pageNumber)
        }

        /// Like `PageApplier.truncateFile`: only ever shrinks.
        mutating func truncate(_ count: UInt32) {
            guard size > count else { return }
            pages = pages.filter { $0.key <= count }
            size = count
        }

        /// Like `PageApplier.finish`: the file becomes exactly the target's size (pages never
        /// written read as zeros, so only their content within that size matters).
        mutating func finish(_ count: UInt32) {
            truncate(count)
            size = count
        }
    }

    @Test(
        "writes coalesced per segment, flushed early at random points, leave the same file as every write and truncation in order",
        arguments: [512, 4096, 65536])
    func coalescingMatchesInOrder(pageSize: Int) throws {
        var random = SeededGenerator(seed: UInt64(pageSize))
        for _ in 0..<200 {
            var inOrder = ModelFile()
            var coalesced = ModelFile()
            var writes = PageWrites()
            let flushLimit = Int.random(in: 1...12, using: &random) * pageSize
            var databasePages: UInt32 = 0
            for _ in 0..<Int.random(in: 1...30, using: &random) {
                // One transaction: its page images, then its database size.
                for _ in 0..<Int.random(in: 0...6, using: &random) {
                    let pageNumber = UInt32.random(in: 1...40, using: &random)
                    let bytes = [UInt8](repeating: UInt8.random(in: 0...255, using: &random), count: pageSize)
                    inOrder.write(pageNumber, bytes)
                    bytes.withUnsafeBytes { writes.write($0, pageNumber: pageNumber) }
                    if writes.bytes > flushLimit && Bool.random(using: &random) {
                        try writes.apply(
                            truncate: { coalesced.truncate($0) }, write: { coalesced.write($0, [UInt8]($1)) })
                    }
                }
                databasePages = UInt32.random(in: 1...45, using: &random)
                inOrder.truncate(databasePages)
                writes.truncate(toPages: databasePages)
            }
            try writes.apply(truncate: { coalesced.truncate($0) }, write: { coalesced.write($0, [UInt8]($1)) })
            inOrder.finish(databasePages)
            coalesced.finish(databasePages)
            #expect(coalesced == inOrder)
            #expect(writes.bytes == 0)
        }
    }
}
