/// Turns one downloaded segment into the writes that applying it does to the restored file,
/// without touching the file: decompresses it, follows its transactions up to the plan's target
/// and coalesces their page images (`PageWrites`). Needing nothing from the segments before it,
/// it runs on several segments at once while `PageApplier` writes an earlier one, which is how
/// a restore with a long WAL history uses more than one core (decompression is most of its work).
enum SegmentDecoder {
    struct Decoded: Sendable {
        var header: ObjectHeader
        var transactions: [SegmentFormat.Transaction]
        /// The position of the last transaction the plan applies (-1: none).
        var stopAfter: Int
        var planLastTxid: UInt64
        /// The coalesced writes not yet applied (all of them when decoded ahead).
        var writes: PageWrites
    }

    /// Decodes the segment at `path`. `check` sees the header before anything is decompressed;
    /// `overflow` receives the writes so far whenever they pass `limitBytes` (the caller applies
    /// them, or throws to give up); the rest comes back in `Decoded.writes`.
    /// Transactions at or before `fromTxid` (already in the snapshot) are skipped.
    static func decode(
        path: String, entry: ReplicaLayout.SegmentEntry, plan: RestorePlanner.Plan, fromTxid: UInt64,
        verified: Bool, limitBytes: Int, check: (ObjectHeader) throws -> Void = { _ in },
        overflow: (inout PageWrites) throws -> Void
    ) throws -> Decoded {
        var parser: SegmentPayloadParser?
        var stopAfter = -1
        var currentPosition: Int?
        var transactions: [SegmentFormat.Transaction] = []
        var writes = PageWrites()
        let header = try ObjectFile.read(
            path: path, key: entry.key, verified: verified,
            expect: { header in
                guard header.kind == .segment, header.generation == entry.generation.value,
                    header.firstTxid == entry.firstTxid, header.lastTxid == entry.lastTxid,
                    WALFormat.isValidPageSize(Int(header.pageSize))
                else {
                    throw WalshipError(
                        .objectCorrupt, "object '\(entry.key)' is corrupt: its header does not match its key")
                }
                try check(header)
                parser = SegmentPayloadParser(header: header, key: entry.key)
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
                        if transactions[position].txid <= fromTxid || position > stopAfter { return }
                        if let previous = currentPosition, previous != position {
                            writes.truncate(toPages: transactions[previous].databasePages)
                        }
                        currentPosition = position
                        writes.write(page, pageNumber: pageNumber)
                        if writes.bytes > limitBytes { try overflow(&writes) }
                    }
                }
            })
        try parser?.finish()
        if let currentPosition { writes.truncate(toPages: transactions[currentPosition].databasePages) }
        return Decoded(
            header: header, transactions: transactions, stopAfter: stopAfter, planLastTxid: plan.lastTxid,
            writes: writes)
    }
}
