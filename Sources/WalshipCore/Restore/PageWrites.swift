/// The page writes and truncations of consecutive transactions, coalesced: a hot page that many
/// small transactions rewrite is written to the file once per segment, not once per transaction
/// (with 360,000 small transactions that is most of the restore's writes). Applying the
/// coalesced form gives the same file as applying the operations in order: truncate to the
/// smallest size any transaction had (dropping buffered pages beyond each truncation as it
/// comes), then write the newest image of each buffered page. Applying a prefix early (to bound
/// the memory) and the rest later is the same as applying it all at once.
struct PageWrites: Sendable {
    /// The most a segment applied as it is decoded buffers before writing.
    static let limitBytes = 8 << 20
    /// The most a segment decoded ahead may hold; larger ones are applied as they are decoded.
    /// At most `Restorer`'s decode-ahead count of these wait at once (3 at most: 6 MiB).
    static let aheadLimitBytes = 2 << 20
    /// Page images are kept in chunks of this size (one allocation per chunk, not per page:
    /// with 512-byte pages per-page arrays cost as much again in allocator overhead).
    static let chunkBytes = 256 << 10

    private var chunks: [[UInt8]] = []
    private var pageSize = 0
    /// Where each buffered page's newest image is: a slot number (chunk and offset).
    private var slots: [UInt32: Int] = [:]
    /// Slots of pages dropped by a truncation, for reuse. Every slot handed out is in `slots`
    /// or here.
    private var freeSlots: [Int] = []
    private var truncateTo: UInt32?
    /// The highest buffered page number: most transactions do not shrink the database, so
    /// their truncation needs no look at the buffer.
    private var highestPage: UInt32 = 0

    /// The memory held: the chunks and about 32 bytes of bookkeeping per page.
    var bytes: Int { chunks.count * Self.chunkBytes + slots.count * 32 }

    private var slotsPerChunk: Int { Self.chunkBytes / pageSize }

    mutating func write(_ page: UnsafeRawBufferPointer, pageNumber: UInt32) {
        if pageSize == 0 { pageSize = page.count }
        precondition(page.count == pageSize, "one page size per segment")
        let slot: Int
        if let existing = slots[pageNumber] {
            slot = existing
        } else if let free = freeSlots.popLast() {
            slot = free
            slots[pageNumber] = slot
        } else {
            slot = slots.count + freeSlots.count
            if slot / slotsPerChunk == chunks.count { chunks.append([UInt8](repeating: 0, count: Self.chunkBytes)) }
            slots[pageNumber] = slot
        }
        highestPage = max(highestPage, pageNumber)
        let offset = (slot % slotsPerChunk) * pageSize
        chunks[slot / slotsPerChunk].withUnsafeMutableBytes {
            UnsafeMutableRawBufferPointer(rebasing: $0[offset..<offset + pageSize]).copyMemory(from: page)
        }
    }

    mutating func truncate(toPages count: UInt32) {
        truncateTo = min(truncateTo ?? count, count)
        guard highestPage > count else { return }
        for pageNumber in Array(slots.keys) where pageNumber > count {
            freeSlots.append(slots.removeValue(forKey: pageNumber)!)
        }
        highestPage = slots.keys.max() ?? 0
    }

    /// Applies the writes to the file and empties the buffer.
    mutating func apply(to applier: PageApplier) throws {
        try apply(
            truncate: { try applier.truncateFile(toPages: $0) },
            write: { try applier.writePage($1, pageNumber: $0) })
    }

    /// Hands on the truncation (if any), then each buffered page in page order, and empties the
    /// buffer.
    mutating func apply(
        truncate: (UInt32) throws -> Void, write: (UInt32, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        if let truncateTo { try truncate(truncateTo) }
        for (pageNumber, slot) in slots.sorted(by: { $0.key < $1.key }) {
            let offset = (slot % slotsPerChunk) * pageSize
            try chunks[slot / slotsPerChunk].withUnsafeBytes {
                try write(pageNumber, UnsafeRawBufferPointer(rebasing: $0[offset..<offset + pageSize]))
            }
        }
        chunks.removeAll()
        slots.removeAll()
        freeSlots.removeAll()
        truncateTo = nil
        highestPage = 0
    }
}
