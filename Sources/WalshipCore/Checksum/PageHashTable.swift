import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's hash of every page of the database state after the last sealed transaction of its
/// generation, and their XOR: the state's checksum (`PageChecksum`). The loop applies each
/// transaction's page hashes as it seals a segment and records the checksum after each one in
/// the segment index; a restart that continues the generation loads the table instead of reading
/// the database; "continuity by content" and drift detection compare the database file with it.
///
/// Memory stays bounded whatever the database size: the hashes live in `<dir>/hashes` (8 bytes
/// per page, little-endian, page n at `(n - 1) * 8`), with only the entries changed since the last
/// seal in memory. Crash safety comes from a journal (`<dir>/journal`): each seal appends one
/// record (its txid, page count, checksum and changed entries, closed by a CRC-32C) and fsyncs it
/// before the segment enters the spool; the entries reach `hashes` after that. A restart replays
/// the records up to the txid the replica resumes from, so the table is exactly that state or
/// unusable (never a mix). `<dir>/base` says which generation and txid `hashes` holds once the
/// journal is folded into it.
///
/// A table is *partial* at the start of a generation (and when a restart could not load it): it
/// then holds the hashes of the pages written since, nothing else, and no checksum. The first
/// snapshot completes it (`complete(withCopyHashes:...)`): a page not written since the table
/// went partial has the copy's content, because the copy's state lies between the generation's
/// start and the snapshot's `usableTxid`, and every later write is in the table.
final class PageHashTable {
    /// Where the table stands.
    struct Base: Codable, Equatable {
        var generation: GenerationID
        var txid: UInt64
        var pageCount: UInt32
        var checksum: UInt64
        var isComplete: Bool
        var pageSize: Int
    }

    let directory: String
    let pageSize: Int
    let lockPage: UInt32
    private(set) var generation: GenerationID
    /// The txid of the state the table holds (the last transaction applied).
    private(set) var txid: UInt64
    private(set) var pageCount: UInt32
    /// The state's checksum; meaningful only when `isComplete`.
    private(set) var checksum: UInt64
    private(set) var isComplete: Bool
    private let hashes: LocalFile
    private let journal: LocalFile
    private var changed: [UInt32: UInt64] = [:]
    /// Partial tables: the pages written since the table went partial, and whether any
    /// transaction was applied since.
    private var written = PageSet()
    private var appliedSincePartial = false
    private var journalBytes: Int64

    /// Journals larger than this are folded into `hashes`.
    static let journalLimit: Int64 = 4 << 20

    private init(directory: String, base: Base) throws {
        self.directory = directory
        pageSize = base.pageSize
        lockPage = PageChecksum.lockPage(pageSize: base.pageSize)
        generation = base.generation
        txid = base.txid
        pageCount = base.pageCount
        checksum = base.checksum
        isComplete = base.isComplete
        hashes = try LocalFile(path: directory + "/hashes", flags: O_RDWR | O_CREAT, mode: 0o600)
        journal = try LocalFile(path: directory + "/journal", flags: O_RDWR | O_CREAT, mode: 0o600)
        journalBytes = try journal.size()
    }

    /// A new, partial table for a generation whose state after `txid` it does not know yet.
    static func startPartial(
        directory: String, generation: GenerationID, txid: UInt64, pageSize: Int, pageCount: UInt32
    ) throws -> PageHashTable {
        try FileSystem.createDirectories(directory, mode: 0o700)
        for name in ["hashes", "journal"] { try FileSystem.removeIfPresent("\(directory)/\(name)") }
        let base = Base(
            generation: generation, txid: txid, pageCount: pageCount, checksum: 0, isComplete: false, pageSize: pageSize
        )
        try saveBase(base, directory: directory)
        return try PageHashTable(directory: directory, base: base)
    }

    /// The table of `generation` at exactly `txid`, from the files a previous run left; nil when
    /// they do not hold that state (another generation, a newer txid, a lost journal, a partial
    /// table, an older walship's state directory). A full disk is thrown, not taken for "no
    /// table": the generation must wait for space, not end for want of its page hashes.
    static func load(directory: String, generation: GenerationID, txid: UInt64, pageSize: Int) throws -> PageHashTable?
    {
        guard let data = try? FileSystem.contents(of: directory + "/base"),
            let base = try? JSONDecoder().decode(Base.self, from: Data(data)),
            base.generation == generation, base.pageSize == pageSize, base.txid <= txid,
            let table = try? PageHashTable(directory: directory, base: base)
        else { return nil }
        guard (try? table.replayJournal(through: txid)) == true, table.txid == txid, table.isComplete else {
            return nil
        }
        // Start a clean journal at this state (records past it were never shipped).
        do {
            try table.fold()
        } catch let error as WalshipError where error.isDiskFull {
            throw error
        } catch {
            return nil
        }
        return table
    }

    // MARK: Reading and changing entries

    /// The hash of page `number` (0 for a page the table has none for).
    func hash(ofPage number: UInt32) throws -> UInt64 {
        if let value = changed[number] { return value }
        let bytes = try hashes.read(count: 8, at: Int64(number - 1) * 8)
        guard bytes.count == 8 else { return 0 }
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    private func set(_ number: UInt32, _ value: UInt64) {
        changed[number] = value
    }

    /// The highest page written by the transaction being applied.
    private var highestWritten: UInt32 = 0

    /// Applies one page image of the transaction being applied (in WAL order; a page written
    /// twice counts once, with its later image).
    func applyPage(_ number: UInt32, hash value: UInt64) throws {
        guard number != lockPage else { return }
        if isComplete {
            let old = try hash(ofPage: number)
            if number <= pageCount { checksum ^= old ^ value }
        } else {
            written.insert(number)
        }
        set(number, value)
        highestWritten = max(highestWritten, number)
    }

    /// Ends the transaction being applied: the database size after it is `databasePages`.
    /// Returns the state's checksum when the table is complete.
    @discardableResult
    func endTransaction(txid: UInt64, databasePages: UInt32) throws -> UInt64? {
        defer {
            self.txid = txid
            pageCount = databasePages
            highestWritten = 0
        }
        guard isComplete else {
            appliedSincePartial = true
            return nil
        }
        if databasePages > pageCount {
            // Pages that joined the database: normally each was written by this transaction. One
            // that was not is all zeros (SQLite reads a page past the end of the file as zeros:
            // it happens when a file overwritten in place is shorter than the size the wal-index
            // still claims), and a restore extends its file with zeros there too.
            for number in (pageCount + 1)...databasePages where number != lockPage {
                if changed[number] == nil { set(number, PageChecksum.zeroPageHash(number, pageSize: pageSize)) }
                checksum ^= try hash(ofPage: number)
            }
        } else if databasePages < pageCount {
            for number in (databasePages + 1)...pageCount where number != lockPage {
                checksum ^= try hash(ofPage: number)
                set(number, 0)
            }
        }
        // Pages written beyond the final size (moved, then truncated away) are not part of it.
        let end = max(databasePages, pageCount)
        if highestWritten > end {
            for number in (end + 1)...highestWritten where changed[number] != nil { set(number, 0) }
        }
        return checksum
    }

    // MARK: Completing a partial table

    /// Completes a partial table with the page hashes of a snapshot's copy (`copyHashes`: 8 bytes
    /// per page, as in `hashes`). The table's state must be at or after the snapshot's
    /// `usableTxid` (the caller checks): then every page written since the copy's state is in the
    /// table, and every other page has the copy's content.
    func complete(withCopyHashes copyHashes: String, copyPages: UInt32) throws {
        precondition(!isComplete, "completing a complete table")
        let copy = try LocalFile.openForReading(copyHashes)
        defer { try? copy.close() }
        try writeChanged()
        // No transaction since the table went partial: its state is the copy's.
        if !appliedSincePartial { pageCount = copyPages }
        var total: UInt64 = 0
        var number: UInt32 = 1
        let chunk = 8192
        while number <= pageCount {
            let count = Int(min(UInt32(chunk), pageCount - number + 1))
            let offset = Int64(number - 1) * 8
            var ours = try hashes.read(count: count * 8, at: offset)
            ours += [UInt8](repeating: 0, count: count * 8 - ours.count)
            let theirs = number <= copyPages ? try copy.read(count: count * 8, at: offset) : []
            for index in 0..<count {
                let page = number + UInt32(index)
                var value = load(ours, index)
                if !written.contains(page) {
                    // Past the copy's end and never written: zeros, as a restore leaves it.
                    value =
                        page <= copyPages && theirs.count >= (index + 1) * 8
                        ? load(theirs, index) : PageChecksum.zeroPageHash(page, pageSize: pageSize)
                    store(&ours, index, value)
                }
                if page != lockPage { total ^= value }
            }
            try ours.withUnsafeBytes { try hashes.write($0, at: offset) }
            number += UInt32(count)
        }
        try hashes.truncate(to: Int64(pageCount) * 8)
        checksum = total
        isComplete = true
        written = PageSet()
        try fold()
    }

    private func load(_ bytes: [UInt8], _ index: Int) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
    }

    private func store(_ bytes: inout [UInt8], _ index: Int, _ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange((index * 8)..<(index * 8 + 8), with: $0) }
    }

    // MARK: Persistence

    /// Appends the changes since the last call as one journal record for the state after `txid`
    /// and fsyncs it. Call before the segment that ends at `txid` enters the spool.
    func journalChanges() throws {
        var writer = ByteWriter(capacity: 40 + changed.count * 12)
        writer.append(Self.recordMagic)
        writer.append(txid)
        writer.append(pageCount)
        writer.append(checksum)
        writer.append(UInt8(isComplete ? 1 : 0))
        writer.append(UInt32(changed.count))
        for (number, value) in changed.sorted(by: { $0.key < $1.key }) {
            writer.append(number)
            writer.append(value)
        }
        writer.append(CRC32C.checksum(writer.bytes))
        try writer.bytes.withUnsafeBytes { try journal.write($0, at: journalBytes) }
        try journal.sync()
        journalBytes += Int64(writer.bytes.count)
    }

    /// Writes the journaled changes into `hashes` (after the segment is in the spool), and folds
    /// the journal once it is large.
    func commitChanges() throws {
        try writeChanged()
        if journalBytes > Self.journalLimit { try fold() }
    }

    private func writeChanged() throws {
        for (number, value) in changed {
            try withUnsafeBytes(of: value.littleEndian) { try hashes.write($0, at: Int64(number - 1) * 8) }
        }
        changed = [:]
    }

    /// Makes `hashes` durable, records the state it holds in `base`, and empties the journal.
    private func fold() throws {
        try writeChanged()
        try hashes.sync()
        try Self.saveBase(
            Base(
                generation: generation, txid: txid, pageCount: pageCount, checksum: checksum, isComplete: isComplete,
                pageSize: pageSize), directory: directory)
        try journal.truncate(to: 0)
        try journal.sync()
        journalBytes = 0
    }

    /// Folds the journal at a clean stop, so the next start reads no records.
    func close() {
        try? fold()
        try? hashes.close()
        try? journal.close()
    }

    private static let recordMagic: UInt32 = 0x5753_504A  // "WSPJ"

    private static func saveBase(_ base: Base, directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try FileSystem.writeAtomically(Array(try encoder.encode(base)), to: directory + "/base", mode: 0o600)
    }

    /// Applies the journal's records after the base through `through`; stops at the first
    /// record past it or the first damaged one (a record cut by a crash). Returns false when a
    /// record does not follow the one before it.
    private func replayJournal(through limit: UInt64) throws -> Bool {
        let size = try journal.size()
        var offset: Int64 = 0
        let headSize = 29  // magic, txid, page count, checksum, complete flag, entry count
        while offset + Int64(headSize) <= size {
            let head = try journal.read(count: headSize, at: offset)
            var reader = ByteReader(bytes: head)
            guard reader.read() as UInt32 == Self.recordMagic else { break }
            let recordTxid: UInt64 = reader.read()
            let recordPages: UInt32 = reader.read()
            let recordChecksum: UInt64 = reader.read()
            let complete: UInt8 = reader.read()
            let count: UInt32 = reader.read()
            let length = headSize + Int(count) * 12 + 4
            let record = try journal.read(count: length, at: offset)
            guard record.count == length,
                CRC32C.checksum(record[0..<(length - 4)])
                    == record.withUnsafeBytes({
                        UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
                    })
            else { break }
            if recordTxid > limit { break }
            if recordTxid > txid {
                var entries = ByteReader(bytes: Array(record[headSize..<(length - 4)]))
                for _ in 0..<count {
                    let number: UInt32 = entries.read()
                    let value: UInt64 = entries.read()
                    set(number, value)
                }
                txid = recordTxid
                pageCount = recordPages
                checksum = recordChecksum
                isComplete = complete == 1
            }
            offset += Int64(length)
        }
        try writeChanged()
        return true
    }
}

/// A set of page numbers as a bitmap (1 bit per page: 32 KiB per GiB of 4 KiB pages).
struct PageSet {
    private var words: [UInt64] = []

    mutating func insert(_ number: UInt32) {
        let index = Int(number >> 6)
        if index >= words.count { words += [UInt64](repeating: 0, count: index - words.count + 1) }
        words[index] |= 1 << UInt64(number & 63)
    }

    func contains(_ number: UInt32) -> Bool {
        let index = Int(number >> 6)
        return index < words.count && words[index] & (1 << UInt64(number & 63)) != 0
    }
}
