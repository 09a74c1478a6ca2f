/// The payload of a segment object, before compression (docs/format.md):
///
/// ```
/// 4 bytes           transaction count n
/// n × 48 bytes      index: txid u64, commitMs u64, databasePages u32, frameCount u32, flags u32,
///                   0 u32, database checksum u64, 0 u64       (format version 1: n × 32 bytes,
///                   without the checksum and the last reserved field)
/// frames            for each transaction in order, frameCount × (page number u32, page bytes)
/// ```
///
/// A transaction's frames are its page after-images in WAL order; a page written twice in one
/// transaction appears twice and the later one wins when applied.
public enum SegmentFormat {
    /// The size of one index entry in a segment of format `version`.
    public static func indexEntrySize(version: UInt16) -> Int { version == 1 ? 32 : 48 }

    /// Index entry flags.
    enum Flag {
        static let late: UInt32 = 1
        static let checksum: UInt32 = 2
        static let fromDatabaseFile: UInt32 = 4
    }

    /// One transaction in a segment's index.
    public struct Transaction: Sendable, Equatable {
        public var txid: UInt64
        /// The agent's wall clock when it read the commit (Unix ms), non-decreasing.
        public var commitMs: UInt64
        /// Database size in pages after the transaction.
        public var databasePages: UInt32
        public var frameCount: UInt32
        /// Read late (after downtime or a stall): the commit time is when the agent saw it.
        public var isLate: Bool
        /// The database checksum (`PageChecksum`) of the state after this transaction; nil when
        /// unknown (format version 1, or sealed before the agent knew the generation's page
        /// hashes).
        public var checksum: UInt64?
        /// Not read from the WAL: the pages that differed between the database file and the last
        /// shipped state when walship started (changes made while it was not running).
        public var isFromDatabaseFile: Bool

        public init(
            txid: UInt64, commitMs: UInt64, databasePages: UInt32, frameCount: UInt32, isLate: Bool = false,
            checksum: UInt64? = nil, isFromDatabaseFile: Bool = false
        ) {
            self.txid = txid
            self.commitMs = commitMs
            self.databasePages = databasePages
            self.frameCount = frameCount
            self.isLate = isLate
            self.checksum = checksum
            self.isFromDatabaseFile = isFromDatabaseFile
        }

        var flags: UInt32 {
            (isLate ? Flag.late : 0) | (checksum != nil ? Flag.checksum : 0)
                | (isFromDatabaseFile ? Flag.fromDatabaseFile : 0)
        }

        func encoded(version: UInt16) -> [UInt8] {
            var writer = ByteWriter(capacity: indexEntrySize(version: version))
            writer.append(txid)
            writer.append(commitMs)
            writer.append(databasePages)
            writer.append(frameCount)
            writer.append(version == 1 ? flags & Flag.late : flags)
            writer.append(UInt32(0))
            if version >= 2 {
                writer.append(checksum ?? 0)
                writer.append(UInt64(0))
            }
            return writer.bytes
        }
    }

    /// The index bytes for `transactions` in format `version`.
    static func encodeIndex(_ transactions: [Transaction], version: UInt16 = ObjectHeader.formatVersion) -> [UInt8] {
        var writer = ByteWriter(capacity: 4 + transactions.count * indexEntrySize(version: version))
        writer.append(UInt32(transactions.count))
        for transaction in transactions { writer.append(transaction.encoded(version: version)) }
        return writer.bytes
    }
}

/// Parses a segment payload as its decompressed bytes arrive, in any chunking, with memory
/// bounded by one page: the index first, then each transaction's frames.
public struct SegmentPayloadParser {
    public enum Event {
        /// The index has been read.
        case index([SegmentFormat.Transaction])
        /// One page after-image of transaction `transactionIndex`.
        case page(transactionIndex: Int, pageNumber: UInt32, bytes: UnsafeRawBufferPointer)
    }

    let pageSize: Int
    let key: String
    /// The object's format version (the index entry size depends on it).
    let version: UInt16
    private var buffer: [UInt8] = []
    private var count: Int?
    private(set) public var transactions: [SegmentFormat.Transaction] = []
    private var indexDone = false
    private var transactionIndex = 0
    private var framesLeftInTransaction = 0
    private var totalBytes: UInt64 = 0

    /// The number of transactions the object's header promises (`lastTxid - firstTxid + 1`;
    /// the header has its own checksum). The payload's count must match it before the index is
    /// buffered, so a corrupt count cannot make the parser hold a large part of the payload.
    let expectedCount: Int?

    public init(
        pageSize: Int, key: String, expectedCount: Int? = nil, version: UInt16 = ObjectHeader.formatVersion
    ) {
        self.pageSize = pageSize
        self.key = key
        self.expectedCount = expectedCount
        self.version = version
    }

    public init(header: ObjectHeader, key: String) {
        let count = header.lastTxid >= header.firstTxid ? header.lastTxid - header.firstTxid + 1 : 0
        self.init(
            pageSize: Int(header.pageSize), key: key, expectedCount: Int(clamping: count), version: header.version)
    }

    func corrupt(_ why: String) -> WalshipError {
        WalshipError(.objectCorrupt, "segment '\(key)' is corrupt: \(why)")
    }

    /// Feeds decompressed bytes; calls `handler` for the index and each page.
    public mutating func feed(_ input: UnsafeRawBufferPointer, _ handler: (Event) throws -> Void) throws {
        var input = input
        totalBytes += UInt64(input.count)
        while !input.isEmpty {
            // Whole frames in the input are handed on where they are, without a copy (most of a
            // restore's bytes are page images).
            let frameSize = 4 + pageSize
            if indexDone && buffer.isEmpty && input.count >= frameSize {
                try consumeFrame(UnsafeRawBufferPointer(rebasing: input[..<frameSize]), handler)
                input = UnsafeRawBufferPointer(rebasing: input[frameSize...])
                continue
            }
            let need = neededBytes()
            let take = min(need - buffer.count, input.count)
            buffer.append(contentsOf: input[0..<take])
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            if buffer.count == need { try consume(handler) }
        }
    }

    private func neededBytes() -> Int {
        if count == nil { return 4 }
        if !indexDone { return count! * SegmentFormat.indexEntrySize(version: version) }
        return 4 + pageSize
    }

    private mutating func consume(_ handler: (Event) throws -> Void) throws {
        var reader = ByteReader(bytes: buffer)
        if count == nil {
            let value: UInt32 = reader.read()
            guard value > 0, value < 10_000_000 else { throw corrupt("implausible transaction count \(value)") }
            if let expectedCount, Int(value) != expectedCount {
                throw corrupt("\(value) transactions in the index, the header says \(expectedCount)")
            }
            count = Int(value)
        } else if !indexDone {
            for _ in 0..<count! {
                let txid: UInt64 = reader.read()
                let commitMs: UInt64 = reader.read()
                let databasePages: UInt32 = reader.read()
                let frameCount: UInt32 = reader.read()
                let flags: UInt32 = reader.read()
                reader.skip(4)
                var checksum: UInt64?
                if version >= 2 {
                    let value: UInt64 = reader.read()
                    reader.skip(8)
                    if flags & SegmentFormat.Flag.checksum != 0 { checksum = value }
                }
                transactions.append(
                    SegmentFormat.Transaction(
                        txid: txid, commitMs: commitMs, databasePages: databasePages, frameCount: frameCount,
                        isLate: flags & SegmentFormat.Flag.late != 0, checksum: checksum,
                        isFromDatabaseFile: flags & SegmentFormat.Flag.fromDatabaseFile != 0))
            }
            indexDone = true
            try handler(.index(transactions))
            advanceToTransactionWithFrames()
        } else {
            let frame = buffer
            try frame.withUnsafeBytes { try consumeFrame($0, handler) }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// One frame: the page number (big-endian) and the page image.
    private mutating func consumeFrame(_ frame: UnsafeRawBufferPointer, _ handler: (Event) throws -> Void) throws {
        guard transactionIndex < transactions.count else { throw corrupt("more frames than the index lists") }
        let pageNumber = UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3])
        guard pageNumber > 0 else { throw corrupt("page number 0") }
        try handler(
            .page(
                transactionIndex: transactionIndex, pageNumber: pageNumber,
                bytes: UnsafeRawBufferPointer(rebasing: frame[4...])))
        framesLeftInTransaction -= 1
        if framesLeftInTransaction == 0 {
            transactionIndex += 1
            advanceToTransactionWithFrames()
        }
    }

    private mutating func advanceToTransactionWithFrames() {
        while transactionIndex < transactions.count && transactions[transactionIndex].frameCount == 0 {
            transactionIndex += 1
        }
        if transactionIndex < transactions.count {
            framesLeftInTransaction = Int(transactions[transactionIndex].frameCount)
        }
    }

    /// Checks the payload ended exactly after the last frame.
    public func finish() throws {
        guard indexDone, buffer.isEmpty, transactionIndex == transactions.count else {
            throw corrupt("the payload ends early")
        }
    }
}
