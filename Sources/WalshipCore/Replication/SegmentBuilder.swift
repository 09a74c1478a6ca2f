#if canImport(Glibc)
    import Glibc
#endif

/// Collects the page after-images of accepted transactions for the next segment in a spool file
/// (`<dir>/open.frames`), so memory never grows with transaction or segment size.
///
/// Frames are appended as the WAL is scanned, before their commit is known to be published;
/// `accept` keeps exactly the frames of the accepted transactions and drops the rest (frames of
/// an unpublished commit, or provisional frames after the last commit). `seal` writes the index
/// and the frames as a segment object file and starts over.
final class SegmentBuilder {
    let directory: String
    let pageSize: Int
    private let framesPath: String
    private var file: LocalFile?
    private var committedBytes: Int64 = 0
    private var pendingBytes: Int64 = 0
    private(set) var transactions: [SegmentFormat.Transaction] = []
    /// The WAL position after the last accepted transaction.
    private(set) var cursorAfterLast: WALCursor?

    init(directory: String, pageSize: Int) throws {
        self.directory = directory
        self.pageSize = pageSize
        framesPath = directory + "/open.frames"
        try FileSystem.removeIfPresent(framesPath)
    }

    var isEmpty: Bool { transactions.isEmpty }
    /// Bytes of accepted frames.
    var size: Int64 { committedBytes }

    private func openFile() throws -> LocalFile {
        if let file { return file }
        let created = try LocalFile(path: framesPath, flags: O_RDWR | O_CREAT | O_TRUNC)
        file = created
        return created
    }

    /// Appends one frame (page number and page bytes) after the accepted ones.
    func appendFrame(pageNumber: UInt32, page: UnsafeRawBufferPointer) throws {
        let file = try openFile()
        var number = pageNumber.bigEndian
        try withUnsafeBytes(of: &number) { try file.write($0, at: committedBytes + pendingBytes) }
        try file.write(page, at: committedBytes + pendingBytes + 4)
        pendingBytes += Int64(4 + page.count)
    }

    /// Accepts `accepted` (whose frames are the first appended since the last accept, in
    /// order) and drops every other pending frame.
    func accept(_ accepted: [SegmentFormat.Transaction], cursor: WALCursor) throws {
        let frames = accepted.reduce(Int64(0)) { $0 + Int64($1.frameCount) }
        let bytes = frames * Int64(4 + pageSize)
        precondition(bytes <= pendingBytes, "accepted more frames than were appended")
        committedBytes += bytes
        pendingBytes = 0
        transactions += accepted
        cursorAfterLast = cursor
        if let file { try file.truncate(to: committedBytes) }
    }

    /// Drops every transaction and frame (their generation ended; they are shipped in the next
    /// generation's snapshot instead).
    func discardAll() throws {
        transactions = []
        committedBytes = 0
        pendingBytes = 0
        cursorAfterLast = nil
        if let file { try file.truncate(to: 0) }
    }

    /// Drops every frame appended since the last accept.
    func discardPending() throws {
        pendingBytes = 0
        if let file { try file.truncate(to: committedBytes) }
    }

    /// Writes the accepted transactions as a segment object at `path`; returns its header. With a
    /// `table`, first applies each transaction's page hashes to it (reading the frames once more)
    /// and records the state's checksum after each one in the index and, for the last, in the
    /// header; `afterTransaction` runs after each transaction is applied (the loop completes a
    /// partial table there once it reaches a snapshot's `usableTxid`).
    func seal(
        to path: String, header template: ObjectHeader, table: PageHashTable? = nil,
        afterTransaction: (UInt64) throws -> Void = { _ in }
    ) throws -> ObjectHeader {
        precondition(!transactions.isEmpty, "sealing an empty segment")
        let file = try openFile()
        var template = template
        if let table {
            try applyHashes(to: table, from: file, afterTransaction: afterTransaction)
            template.databaseChecksum = transactions.last!.checksum
        }
        let index = SegmentFormat.encodeIndex(transactions, version: template.version)
        let total = committedBytes
        let header = try ObjectFile.write(to: path, header: template) { emit in
            try index.withUnsafeBytes { try emit($0) }
            try forEachChunk(of: file, total: total) { chunk in try emit(chunk) }
        }
        try FileSystem.syncFile(path)
        transactions = []
        committedBytes = 0
        pendingBytes = 0
        try file.truncate(to: 0)
        return header
    }

    /// Reads the accepted frames in 1 MiB chunks.
    private func forEachChunk(
        of file: LocalFile, total: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let frameSize = 4 + pageSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, (1 << 20) / frameSize) * frameSize, alignment: 16)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < total {
            let want = Int(min(Int64(buffer.count), total - offset))
            let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), at: offset)
            guard count == want else {
                throw WalshipError(.localIO, "spool file '\(framesPath)' is shorter than expected")
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            offset += Int64(count)
        }
    }

    /// Applies every accepted transaction's page hashes to `table` and records the checksums.
    private func applyHashes(
        to table: PageHashTable, from file: LocalFile, afterTransaction: (UInt64) throws -> Void
    ) throws {
        let frameSize = 4 + pageSize
        var position = 0
        var framesLeft = transactions.isEmpty ? 0 : Int(transactions[0].frameCount)
        func endTransactions() throws {
            // Transactions whose frames are all applied (including those with none).
            while position < transactions.count && framesLeft == 0 {
                let transaction = transactions[position]
                var checksum = try table.endTransaction(
                    txid: transaction.txid, databasePages: transaction.databasePages)
                try afterTransaction(transaction.txid)
                if checksum == nil && table.isComplete { checksum = table.checksum }
                transactions[position].checksum = checksum
                position += 1
                if position < transactions.count { framesLeft = Int(transactions[position].frameCount) }
            }
        }
        try endTransactions()
        try forEachChunk(of: file, total: committedBytes) { chunk in
            var offset = 0
            while offset + frameSize <= chunk.count {
                let number = UInt32(bigEndian: chunk.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let page = UnsafeRawBufferPointer(rebasing: chunk[(offset + 4)..<(offset + frameSize)])
                try table.applyPage(number, hash: PageChecksum.hash(page: page, number: number))
                framesLeft -= 1
                try endTransactions()
                offset += frameSize
            }
        }
        guard position == transactions.count else {
            throw WalshipError(.localIO, "spool file '\(framesPath)' holds fewer frames than its transactions")
        }
    }

    func close() {
        try? file?.close()
        file = nil
        try? FileSystem.removeIfPresent(framesPath)
    }
}
