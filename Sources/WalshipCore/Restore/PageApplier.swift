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
        guard offset == Int64(pageCount) * Int64(pageSize) else {
            throw WalshipError(
                .objectCorrupt, "object '\(entry.key)' is corrupt: \(offset) bytes for \(pageCount) pages")
        }
        fromTxid = header.firstTxid
        appliedTxid = header.firstTxid
        usableTxid = header.lastTxid
    }

    func applySegment(
        path objectPath: String, entry: ReplicaLayout.SegmentEntry, plan: RestorePlanner.Plan, verified: Bool = false
    ) throws {
        guard !reachedTarget else { return }
        var parser: SegmentPayloadParser?
        var skipping = false
        var stopAfter = -1
        var currentPosition: Int?
        var transactions: [SegmentFormat.Transaction] = []
        let header = try ObjectFile.read(
            path: objectPath, key: entry.key, verified: verified,
            expect: { header in
                guard header.kind == .segment, header.generation == entry.generation.value,
                    header.firstTxid == entry.firstTxid, header.lastTxid == entry.lastTxid,
                    Int(header.pageSize) == self.pageSize
                else {
                    throw WalshipError(
                        .objectCorrupt, "object '\(entry.key)' is corrupt: its header does not match its key")
                }
                if let previous = self.previousSegment {
                    guard header.predecessorTxid == previous.lastTxid,
                        header.predecessorSHA256 == previous.payloadSHA256,
                        header.firstTxid == previous.lastTxid + 1
                    else {
                        throw WalshipError(
                            .objectCorrupt,
                            "object '\(entry.key)' does not follow the previous segment (predecessor link broken)")
                    }
                }
                parser = SegmentPayloadParser(pageSize: self.pageSize, key: entry.key)
            },
            consume: { _, bytes in
                try parser!.feed(bytes) { event in
                    switch event {
                    case .index(let index):
                        transactions = index
                        // The last transaction to apply in this segment.
                        for (position, transaction) in index.enumerated() {
                            if transaction.txid > plan.lastTxid { break }
                            if let until = plan.untilMs, transaction.commitMs > until { break }
                            stopAfter = position
                        }
                    case .page(let position, let pageNumber, let page):
                        let transaction = transactions[position]
                        skipping = transaction.txid <= self.fromTxid || position > stopAfter
                        if skipping { return }
                        if let previous = currentPosition, previous != position {
                            try self.pending.truncate(toPages: transactions[previous].databasePages, into: self)
                        }
                        currentPosition = position
                        try self.pending.write(page, pageNumber: pageNumber, into: self)
                    }
                }
            })
        try parser?.finish()
        if let currentPosition {
            try pending.truncate(toPages: transactions[currentPosition].databasePages, into: self)
        }
        try pending.flush(into: self)
        // Follow each applied transaction's database size and note where we stopped.
        for (position, transaction) in transactions.enumerated() where position <= stopAfter {
            if transaction.txid <= fromTxid { continue }
            appliedTxid = transaction.txid
            appliedCommitMs = transaction.commitMs
            pageCount = Int(transaction.databasePages)
        }
        if stopAfter < transactions.count - 1 { reachedTarget = true }
        if appliedTxid >= plan.lastTxid { reachedTarget = true }
        previousSegment = header
    }

    /// Shrinks the file when a transaction shrank the database (VACUUM, incremental vacuum), so
    /// pages beyond it do not survive into a later growth.
    fileprivate func truncateFile(toPages pages: UInt32) throws {
        let size = Int64(pages) * Int64(pageSize)
        if try file.size() > size { try file.truncate(to: size) }
    }

    fileprivate func writePage(_ bytes: UnsafeRawBufferPointer, pageNumber: UInt32) throws {
        try file.write(bytes, at: Int64(pageNumber - 1) * Int64(pageSize))
    }

    private var pending = PendingPages()

    /// Truncates to the target's database size and closes the file (the caller fsyncs it).
    func finish(plan: RestorePlanner.Plan) throws {
        try file.truncate(to: Int64(pageCount) * Int64(pageSize))
        try file.close()
    }
}

/// The page writes and truncations of consecutive transactions, coalesced: a hot page that many
/// small transactions rewrite is written to the file once per segment, not once per transaction
/// (with 360,000 small transactions that is most of the restore's writes). Applying the
/// coalesced form gives the same file as applying the operations in order: truncate to the
/// smallest size any transaction had (dropping buffered pages beyond each truncation as it
/// comes), then write the newest image of each buffered page. Memory is bounded: past
/// `limitBytes` the buffer is flushed early, which is the same as applying a prefix.
private struct PendingPages {
    static let limitBytes = 8 << 20

    private var pages: [UInt32: [UInt8]] = [:]
    private var bytes = 0
    private var truncateTo: UInt32?
    /// The highest buffered page number: most transactions do not shrink the database, so
    /// their truncation needs no look at the buffer.
    private var highestPage: UInt32 = 0

    mutating func write(_ page: UnsafeRawBufferPointer, pageNumber: UInt32, into applier: PageApplier) throws {
        if pages[pageNumber] != nil {
            pages[pageNumber]!.withUnsafeMutableBytes { $0.copyMemory(from: page) }
        } else {
            pages[pageNumber] = [UInt8](page)
            bytes += page.count
            highestPage = max(highestPage, pageNumber)
            if bytes > Self.limitBytes { try flush(into: applier) }
        }
    }

    mutating func truncate(toPages count: UInt32, into applier: PageApplier) throws {
        truncateTo = min(truncateTo ?? count, count)
        guard highestPage > count else { return }
        for pageNumber in Array(pages.keys) where pageNumber > count {
            bytes -= pages.removeValue(forKey: pageNumber)!.count
        }
        highestPage = pages.keys.max() ?? 0
    }

    mutating func flush(into applier: PageApplier) throws {
        if let truncateTo { try applier.truncateFile(toPages: truncateTo) }
        for pageNumber in pages.keys.sorted() {
            try pages[pageNumber]!.withUnsafeBytes { try applier.writePage($0, pageNumber: pageNumber) }
        }
        pages.removeAll(keepingCapacity: true)
        bytes = 0
        truncateTo = nil
        highestPage = 0
    }
}
