import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Database checksum")
struct PageChecksumTests {
    @Test(
        "a database and its online-backup copy have the same checksum, though the copy's page 1 header differs (the masked fields)"
    )
    func backupCopyHasTheSameChecksum() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 300, payloadBytes: 700)
        let connection = try Connection(path: source)
        defer { connection.close() }
        try connection.execute("CREATE INDEX ledger_payload ON ledger(payload)")
        _ = try connection.checkpoint(.truncate)  // The file is now the whole state.
        let copy = try Connection(path: directory.file("copy.db"), mode: [.readWrite, .create])
        try copy.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
        try connection.beginReadTransaction()
        _ = try OnlineBackup().copy(from: connection, to: copy, isCancelled: { false })
        try connection.rollback()
        copy.close()
        let original = try PageChecksum.hashFile(at: source, pageSize: 4096)
        let copied = try PageChecksum.hashFile(at: directory.file("copy.db"), pageSize: 4096)
        #expect(original.pages == copied.pages)
        #expect(original.checksum == copied.checksum)
        // The copy's page 1 is not byte-identical: without the mask the hashes would differ.
        let first = Array(FileManager.default.contents(atPath: source)!.prefix(4096))
        let second = Array(FileManager.default.contents(atPath: directory.file("copy.db"))!.prefix(4096))
        #expect(first != second)
        #expect(XXH64.hash(first, seed: 1) != XXH64.hash(second, seed: 1))
        let differing = (0..<100).filter { first[$0] != second[$0] }
        #expect(differing.allSatisfy { offset in PageChecksum.maskedRanges.contains { $0.contains(offset) } })
    }

    @Test("one changed byte anywhere changes the checksum; the lock page never counts")
    func sensitivity() throws {
        let pageSize = 512
        var pages = (0..<4).map { index in [UInt8](repeating: UInt8(index), count: pageSize) }
        func checksum() -> UInt64 {
            pages.enumerated().reduce(0) { total, page in
                total ^ page.element.withUnsafeBytes { PageChecksum.hash(page: $0, number: UInt32(page.offset + 1)) }
            }
        }
        let before = checksum()
        pages[2][100] ^= 1
        #expect(checksum() != before)
        pages[2][100] ^= 1
        #expect(checksum() == before)
        // Swapping two pages' contents is a change too (each hash is seeded with its page number).
        pages.swapAt(1, 2)
        #expect(checksum() != before)
        #expect(PageChecksum.lockPage(pageSize: 4096) == 262_145)
        #expect(PageChecksum.lockPage(pageSize: 65536) == 16_385)
    }
}
