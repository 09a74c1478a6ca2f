/// The payload of a segment object, before compression (docs/format.md):
///
/// ```
/// 4 bytes           transaction count n
/// n × 32 bytes      index: txid u64, commitMs u64, databasePages u32, frameCount u32, flags u32, 0 u32
/// frames            for each transaction in order, frameCount × (page number u32, page bytes)
/// ```
///
/// A transaction's frames are its page after-images in WAL order; a page written twice in one
/// transaction appears twice and the later one wins when applied.
public enum SegmentFormat {
    public static let indexEntrySize = 32

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

        public init(txid: UInt64, commitMs: UInt64, databasePages: UInt32, frameCount: UInt32, isLate: Bool = false) {
            self.txid = txid
            self.commitMs = commitMs
            self.databasePages = databasePages
            self.frameCount = frameCount
            self.isLate = isLate
        }

        func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: indexEntrySize)
            writer.append(txid)
            writer.append(commitMs)
            writer.append(databasePages)
            writer.append(frameCount)
            writer.append(UInt32(isLate ? 1 : 0))
            writer.append(UInt32(0))
            return writer.bytes
        }
    }

    /// The index bytes for `transactions`.
    static func encodeIndex(_ transactions: [Transaction]) -> [UInt8] {
        var writer = ByteWriter(capacity: 4 + transactions.count * indexEntrySize)
        writer.append(UInt32(transactions.count))
        for transaction in transactions { writer.append(transaction.encoded()) }
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

    public init(pageSize: Int, key: String, expectedCount: Int? = nil) {
        self.pageSize = pageSize
        self.key = key
        self.expectedCount = expectedCount
    }

    public init(header: ObjectHeader, key: String) {
        let count = header.lastTxid >= header.firstTxid ? header.lastTxid - header.firstTxid + 1 : 0
        self.init(pageSize: Int(header.pageSize), key: key, expectedCount: Int(clamping: count))
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
        if !indexDone { return count! * SegmentFormat.indexEntrySize }
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
                transactions.append(
                    SegmentFormat.Transaction(
                        txid: txid, commitMs: commitMs, databasePages: databasePages, frameCount: frameCount,
                        isLate: flags & 1 == 1))
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
