import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Page hash table")
struct PageHashTableTests {
    /// The state the table must track: a hash per page and a page count.
    struct Model {
        var hashes: [UInt32: UInt64] = [:]
        var pages: UInt32 = 0

        var checksum: UInt64 {
            (1...max(1, pages)).reduce(UInt64(0)) { $0 ^ (pages == 0 ? 0 : hashes[$1] ?? 0) }
        }

        /// Writes the model's hashes in the table's file layout (for a snapshot's copy).
        func write(to path: String) throws {
            var bytes: [UInt8] = []
            for page in 1...max(1, pages) where pages > 0 {
                withUnsafeBytes(of: (hashes[page] ?? 0).littleEndian) { bytes += $0 }
            }
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        }
    }

    /// One random transaction: a few pages written (some past the end, so the database grows),
    /// and a new size (sometimes smaller: a VACUUM or an incremental vacuum).
    static func transaction(
        _ model: inout Model, _ random: inout SeededGenerator
    ) -> (pages: [(UInt32, UInt64)], size: UInt32) {
        var size = model.pages
        switch Int.random(in: 0..<10, using: &random) {
        case 0: size = max(1, size / 2)
        case 1, 2: size += UInt32.random(in: 1...20, using: &random)
        default: break
        }
        var writes: [(UInt32, UInt64)] = []
        // Every page the transaction adds is written (SQLite writes each new page).
        if size > model.pages { for page in (model.pages + 1)...size { writes.append((page, random.next())) } }
        for _ in 0..<Int.random(in: 0...6, using: &random) where size > 0 {
            writes.append((UInt32.random(in: 1...size, using: &random), random.next()))
        }
        // Sometimes a page past the final size (moved, then truncated away).
        if Bool.random(using: &random) { writes.append((size + 3, random.next())) }
        writes.shuffle(using: &random)
        for (page, hash) in writes where page <= size { model.hashes[page] = hash }
        model.pages = size
        for page in model.hashes.keys where page > size { model.hashes[page] = nil }
        return (writes, size)
    }

    static func apply(
        _ writes: [(UInt32, UInt64)], size: UInt32, txid: UInt64, to table: PageHashTable
    ) throws
        -> UInt64?
    {
        for (page, hash) in writes { try table.applyPage(page, hash: hash) }
        return try table.endTransaction(txid: txid, databasePages: size)
    }

    /// A complete table holding `model` at `txid`.
    static func completeTable(
        _ model: Model, txid: UInt64, directory: TemporaryDirectory, generation: GenerationID
    ) throws -> PageHashTable {
        let table = try PageHashTable.startPartial(
            directory: directory.file("pages"), generation: generation, txid: txid, pageSize: 512, pageCount: 0)
        try model.write(to: directory.file("copy.hashes"))
        try table.complete(withCopyHashes: directory.file("copy.hashes"), copyPages: model.pages)
        return table
    }

    @Test(
        "a complete table's checksum equals the XOR of its pages' hashes through writes, growth and truncation, and so does the table loaded again (seeded)",
        arguments: [1, 2, 3] as [UInt64])
    func checksumFollowsTheState(seed: UInt64) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var random = SeededGenerator(seed: seed)
        let generation = GenerationID(42)
        var model = Model()
        for page in UInt32(1)...30 { model.hashes[page] = random.next() }
        model.pages = 30
        var table = try Self.completeTable(model, txid: 5, directory: directory, generation: generation)
        #expect(table.checksum == model.checksum)
        var txid: UInt64 = 5
        for round in 0..<300 {
            txid += 1
            let (writes, size) = Self.transaction(&model, &random)
            let checksum = try Self.apply(writes, size: size, txid: txid, to: table)
            #expect(checksum == model.checksum, "round \(round)")
            #expect(table.pageCount == model.pages)
            if round % 7 == 0 {
                try table.journalChanges()
                try table.commitChanges()
            }
            if round % 50 == 49 {
                // A restart: the table comes back at exactly the last journaled txid.
                try table.journalChanges()
                try table.commitChanges()
                table.close()
                table = try #require(
                    try PageHashTable.load(
                        directory: directory.file("pages"), generation: generation, txid: txid, pageSize: 512))
                #expect(table.checksum == model.checksum)
                #expect(table.txid == txid)
            }
        }
    }

    @Test(
        "a partial table completed with a snapshot's copy hashes holds the state it has reached, whichever txid between the generation's start and the snapshot's usable txid the copy is at"
    )
    func partialTableCompletes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var random = SeededGenerator(seed: 9)
        var model = Model()
        for page in UInt32(1)...20 { model.hashes[page] = random.next() }
        model.pages = 20
        let table = try PageHashTable.startPartial(
            directory: directory.file("pages"), generation: GenerationID(7), txid: 100, pageSize: 512, pageCount: 20)
        var copy: Model?
        for txid in UInt64(101)...160 {
            let (writes, size) = Self.transaction(&model, &random)
            #expect(try Self.apply(writes, size: size, txid: txid, to: table) == nil)
            if txid == 130 { copy = model }  // The copy's state, somewhere before the usable txid.
        }
        try copy!.write(to: directory.file("copy.hashes"))
        try table.complete(withCopyHashes: directory.file("copy.hashes"), copyPages: copy!.pages)
        #expect(table.isComplete)
        #expect(table.checksum == model.checksum)
        #expect(table.pageCount == model.pages)
    }

    @Test(
        "a restart loads the table at exactly the txid the replica resumes from: journaled records after it are ignored, a torn record ends the replay, and any other state is refused"
    )
    func loadIsExactOrNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var random = SeededGenerator(seed: 4)
        let generation = GenerationID(3)
        var model = Model()
        for page in UInt32(1)...10 { model.hashes[page] = random.next() }
        model.pages = 10
        let table = try Self.completeTable(model, txid: 1, directory: directory, generation: generation)
        var checksums: [UInt64: UInt64] = [1: model.checksum]
        for txid in UInt64(2)...4 {
            let (writes, size) = Self.transaction(&model, &random)
            checksums[txid] = try Self.apply(writes, size: size, txid: txid, to: table)
            try table.journalChanges()
            try table.commitChanges()
        }
        // Txid 5 is journaled, and the agent is killed before its segment reaches the spool.
        let (writes, size) = Self.transaction(&model, &random)
        checksums[5] = try Self.apply(writes, size: size, txid: 5, to: table)
        try table.journalChanges()
        let pages = directory.file("pages")
        for txid in UInt64(1)...5 {
            let copy = try TemporaryDirectory()
            defer { copy.remove() }
            _ = try CommandRunner.run("/bin/cp", ["-a", pages, copy.file("pages")])
            let loaded = try PageHashTable.load(
                directory: copy.file("pages"), generation: generation, txid: txid, pageSize: 512)
            #expect(loaded?.checksum == checksums[txid], "txid \(txid)")
        }
        #expect(try PageHashTable.load(directory: pages, generation: GenerationID(4), txid: 5, pageSize: 512) == nil)
        #expect(try PageHashTable.load(directory: pages, generation: generation, txid: 5, pageSize: 4096) == nil)
        #expect(try PageHashTable.load(directory: pages, generation: generation, txid: 6, pageSize: 512) == nil)
        // A record cut short by a crash ends the replay there.
        let journal = try LocalFile(path: pages + "/journal", flags: O_RDWR)
        try journal.truncate(to: try journal.size() - 3)
        try journal.close()
        #expect(try PageHashTable.load(directory: pages, generation: generation, txid: 5, pageSize: 512) == nil)
        #expect(
            try PageHashTable.load(directory: pages, generation: generation, txid: 4, pageSize: 512)?.checksum
                == checksums[4])
        // A partial table proves nothing.
        let partial = try PageHashTable.startPartial(
            directory: directory.file("partial"), generation: generation, txid: 9, pageSize: 512, pageCount: 3)
        partial.close()
        #expect(
            try PageHashTable.load(directory: directory.file("partial"), generation: generation, txid: 9, pageSize: 512)
                == nil)
    }
}
