import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

/// A WAL-mode database with frames left in its WAL (the connection stays open so SQLite keeps
/// them), for reading real WAL and wal-index bytes.
struct LiveWAL {
    let directory: TemporaryDirectory
    let path: String
    let app: Connection

    init(commits: Int, pageSize: Int = 4096) throws {
        directory = try TemporaryDirectory()
        path = directory.file("app.db")
        app = try Connection(path: path)
        try app.execute("PRAGMA page_size=\(pageSize); PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0")
        try app.execute(
            "CREATE TABLE ledger(id INTEGER PRIMARY KEY, payload BLOB NOT NULL); CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0)"
        )
        for _ in 0..<commits { try LedgerDatabase.commitNext(on: app) }
    }

    func bytes(_ suffix: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path + suffix)))
    }

    func close() {
        app.close()
        directory.remove()
    }
}

@Suite("WAL format")
struct WALFormatTests {
    @Test(
        "the header and every frame of a real WAL verify, and commits are where SQLite says",
        arguments: [1024, 4096, 65536])
    func realWALVerifies(pageSize: Int) throws {
        let wal = try LiveWAL(commits: 20, pageSize: pageSize)
        defer { wal.close() }
        let bytes = try wal.bytes("-wal")
        let header = try #require(bytes.withUnsafeBytes { WALFormat.Header.parse($0) })
        #expect(header.pageSize == pageSize)
        let index = try #require(try wal.bytes("-shm").withUnsafeBytes { WALIndexHeader.parse($0) })
        #expect(index.salt1 == header.salt1 && index.salt2 == header.salt2)
        #expect(index.pageSize == pageSize)

        let file = try LocalFile.openForReading(wal.path + "-wal")
        let builder = try SegmentBuilder(directory: wal.directory.path, pageSize: pageSize)
        defer { builder.close() }
        var frames = 0
        let result = try WALScanner(file: file, cursor: WALCursor(header: header)).scan(
            through: index.maxFrame, maxBytes: .max
        ) {
            _, _ in frames += 1
        }
        #expect(result.lastValidFrame == index.maxFrame)
        #expect(result.checksumAfterLastValid == index.frameChecksum)
        #expect(result.commits.count == 23)  // two CREATE TABLEs, the counter insert, 20 ledger commits
        #expect(result.commits.last?.databasePages == index.databasePages)
        #expect(Int(result.commits.reduce(0) { $0 + $1.frameCount }) == frames)
    }

    @Test("a flipped byte in a frame ends the scan at the frame before it")
    func corruptedFrameStopsScan() throws {
        let wal = try LiveWAL(commits: 10)
        defer { wal.close() }
        var bytes = try wal.bytes("-wal")
        let header = try #require(bytes.withUnsafeBytes { WALFormat.Header.parse($0) })
        let index = try #require(try wal.bytes("-shm").withUnsafeBytes { WALIndexHeader.parse($0) })
        let corruptFrame: UInt32 = 7
        bytes[Int(WALFormat.frameOffset(corruptFrame, pageSize: 4096)) + 100] ^= 0xFF
        let copy = wal.directory.file("copy-wal")
        _ = FileManager.default.createFile(atPath: copy, contents: Data(bytes))
        let result = try WALScanner(file: try LocalFile.openForReading(copy), cursor: WALCursor(header: header))
            .scan(through: index.maxFrame, maxBytes: .max) { _, _ in }
        #expect(result.lastValidFrame == corruptFrame - 1)
        #expect(result.stoppedEarly)
        #expect(result.commits.allSatisfy { $0.frame < corruptFrame })
    }

    @Test("a header with a bad checksum or magic is rejected")
    func badHeaderRejected() throws {
        let wal = try LiveWAL(commits: 1)
        defer { wal.close() }
        var bytes = try wal.bytes("-wal")
        bytes[17] ^= 1
        #expect(bytes.withUnsafeBytes { WALFormat.Header.parse($0) } == nil)
        #expect([UInt8](repeating: 0, count: 32).withUnsafeBytes { WALFormat.Header.parse($0) } == nil)
    }

    @Test("a wal-index header whose two copies differ is rejected (a writer is updating it)")
    func tornIndexRejected() throws {
        let wal = try LiveWAL(commits: 3)
        defer { wal.close() }
        var bytes = try wal.bytes("-shm")
        #expect(bytes.withUnsafeBytes { WALIndexHeader.parse($0) } != nil)
        bytes[16] &+= 1  // mxFrame of the first copy only
        #expect(bytes.withUnsafeBytes { WALIndexHeader.parse($0) } == nil)
    }
}
