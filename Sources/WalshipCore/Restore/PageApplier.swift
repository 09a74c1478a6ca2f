#if canImport(Glibc)
    import Glibc
#endif

/// Builds the restored database file: writes the snapshot, then each transaction's page
/// after-images at `(page - 1) * pageSize`, truncating to each transaction's database size, and
/// stops after the target. Checks each object's header against its key and the segment chain
/// (txid continuity, predecessor txid and checksum).
final class PageApplier: @unchecked Sendable {  // Used by one restore, one object at a time.
    let path: String
    private let file: LocalFile
    private var pageSize = 0
    /// The last transaction applied from a segment (the snapshot's `fromTxid` before any).
    private(set) var appliedTxid: UInt64 = 0
    private var usableTxid: UInt64 = 0
    /// The txid the result is at: the snapshot alone is somewhere between `fromTxid` and
    /// `usableTxid`, so before any later transaction is applied the result is at `usableTxid`
    /// only once the segments through it are applied (the planner guarantees they are).
    var resultTxid: UInt64 { max(appliedTxid, usableTxid) }
    private(set) var appliedCommitMs: UInt64?
    /// The database checksum the agent recorded for the state the result is at: the last applied
    /// transaction's, or the snapshot's when nothing after it was needed (a snapshot whose
    /// `fromTxid` equals its `usableTxid` holds exactly that state). nil when the restore point
    /// has none (format version 1, or sealed before the agent knew its page hashes).
    private(set) var expectedChecksum: UInt64?
    /// The database identity the snapshot carries (unknown for format version 1).
    private(set) var databaseID: DatabaseID = .unknown
    private(set) var pageCount = 0
    private(set) var reachedTarget = false
    private var fromTxid: UInt64 = 0
    private var previousSegment: ObjectHeader?

    init(path: String) throws {
        self.path = path
        file = try LocalFile.create(path, mode: 0o644)
    }

    /// `verified`: `ObjectFile.verify` has checked the file's checksum.
    func applySnapshot(path objectPath: String, entry: ReplicaLayout.SnapshotEntry, verified: Bool = false) throws {
        var offset: Int64 = 0
        let header = try ObjectFile.read(
            path: objectPath, key: entry.key, verified: verified,
            expect: { header in
                guard header.kind == .snapshot, header.generation == entry.generation.value,
                    header.lastTxid == entry.usableTxid, header.firstTxid == entry.fromTxid
                else {
                    throw WalshipError(
                        .objectCorrupt, "object '\(entry.key)' is corrupt: its header does not match its key")
                }
            },
            consume: { _, bytes in
                try self.file.write(bytes, at: offset)
                offset += Int64(bytes.count)
            })
        pageSize = Int(header.pageSize)
        pageCount = Int(header.databasePages)
        guard WALFormat.isValidPageSize(pageSize), offset == Int64(pageCount) * Int64(pageSize) else {
            throw WalshipError(
                .objectCorrupt, "object '\(entry.key)' is corrupt: \(offset) bytes for \(pageCount) pages")
        }
        fromTxid = header.firstTxid
        appliedTxid = header.firstTxid
        usableTxid = header.lastTxid
        expectedChecksum = header.firstTxid == header.lastTxid ? header.databaseChecksum : nil
        databaseID = header.databaseID
    }

    /// The page size of the result.
    var resultPageSize: Int { pageSize }

    /// Decodes and applies one segment on the calling thread, writing its pages as it goes
    /// (in batches of at most `PageWrites.limitBytes`): for segments too large to decode ahead.
    func applySegment(
        path objectPath: String, entry: ReplicaLayout.SegmentEntry, plan: RestorePlanner.Plan, verified: Bool = false
    ) throws {
        guard !reachedTarget else { return }
        let decoded = try SegmentDecoder.decode(
            path: objectPath, entry: entry, plan: plan, fromTxid: fromTxid, verified: verified,
            limitBytes: PageWrites.limitBytes, check: { header in try self.checkFollows(header, key: entry.key) },
            overflow: { writes in try writes.apply(to: self) })
        try apply(decoded, key: entry.key)
    }

    /// Applies a segment decoded ahead by `SegmentDecoder` (possibly on another thread).
    func apply(_ decoded: SegmentDecoder.Decoded, key: String) throws {
        guard !reachedTarget else { return }
        try checkFollows(decoded.header, key: key)
        var writes = decoded.writes
        try writes.apply(to: self)
        // Follow each applied transaction's database size and note where we stopped.
        for (position, transaction) in decoded.transactions.enumerated() where position <= decoded.stopAfter {
            if transaction.txid <= fromTxid { continue }
            appliedTxid = transaction.txid
            appliedCommitMs = transaction.commitMs
            pageCount = Int(transaction.databasePages)
            expectedChecksum = transaction.checksum
        }
        if decoded.stopAfter < decoded.transactions.count - 1 { reachedTarget = true }
        if appliedTxid >= decoded.planLastTxid { reachedTarget = true }
        previousSegment = decoded.header
    }

    /// The checks that need the segments before this one: the page size and the chain of
    /// predecessor links.
    private func checkFollows(_ header: ObjectHeader, key: String) throws {
        guard Int(header.pageSize) == pageSize else {
            throw WalshipError(.objectCorrupt, "object '\(key)' is corrupt: its header does not match its key")
        }
        if let previous = previousSegment {
            guard header.predecessorTxid == previous.lastTxid,
                header.predecessorSHA256 == previous.payloadSHA256,
                header.firstTxid == previous.lastTxid + 1
            else {
                throw WalshipError(
                    .objectCorrupt, "object '\(key)' does not follow the previous segment (predecessor link broken)")
            }
        }
    }

    /// Shrinks the file when a transaction shrank the database (VACUUM, incremental vacuum), so
    /// pages beyond it do not survive into a later growth.
    func truncateFile(toPages pages: UInt32) throws {
        let size = Int64(pages) * Int64(pageSize)
        if try file.size() > size { try file.truncate(to: size) }
    }

    func writePage(_ bytes: UnsafeRawBufferPointer, pageNumber: UInt32) throws {
        try file.write(bytes, at: Int64(pageNumber - 1) * Int64(pageSize))
    }

    /// Truncates to the target's database size and closes the file (the caller fsyncs it).
    func finish(plan: RestorePlanner.Plan) throws {
        try file.truncate(to: Int64(pageCount) * Int64(pageSize))
        try file.close()
    }
}
