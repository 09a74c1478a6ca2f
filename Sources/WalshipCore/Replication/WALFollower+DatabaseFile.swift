/// Reading the database file itself, through the connection that holds the follower's current
/// read transaction (DESIGN.md section 3: never a descriptor of walship's own): the start-up check
/// of "continuity by content" and the drift checks compare it with the page-hash table.
extension WALFollower {
    /// What a scan of the database file found.
    struct DatabaseFileScan {
        /// The wal-index header the file was read under: nothing it published is missing from
        /// the file.
        var index: WALIndexHeader
        /// Pages in the file.
        var pages: UInt32
        /// Pages whose hash differs from the table's (appended to the builder).
        var differingPages: Int
        /// The file's database checksum.
        var checksum: UInt64
    }

    /// Scans the whole database file when the WAL holds nothing the file lacks (every published
    /// frame is backfilled): hashes every page, compares it with `table` and appends each page
    /// that differs to `builder` as a pending frame. nil when the WAL holds frames the file lacks,
    /// or the file is not a whole number of pages.
    ///
    /// Page 1 is appended whenever any other page differs (or the size does): its hash masks the
    /// header fields a backup copy rewrites, and one of them, the in-header database size, must
    /// reach a restore exactly as the file has it.
    func scanDatabaseFile(comparingWith table: PageHashTable, into builder: SegmentBuilder) throws -> DatabaseFileScan?
    {
        guard let index = shm.readHeader(), let backfill = shm.readBackfill(), backfill == index.maxFrame,
            !connections.isEmpty
        else { return nil }
        let connection = connections[current]
        let pageSize = databasePageSize
        let size = try connection.databaseFileSize()
        guard size % Int64(pageSize) == 0 else { return nil }
        let pages = UInt32(size / Int64(pageSize))
        let lock = PageChecksum.lockPage(pageSize: pageSize)
        let perRead = max(1, (1 << 20) / pageSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: perRead * pageSize, alignment: 16)
        defer { buffer.deallocate() }
        var checksum: UInt64 = 0
        var differing = 0
        var first: UInt32 = 1
        while first <= pages {
            let count = Int(min(UInt32(perRead), pages - first + 1))
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[..<(count * pageSize)])
            guard try connection.readDatabaseFile(into: chunk, at: Int64(first - 1) * Int64(pageSize)) else {
                return nil
            }
            for index in 0..<count {
                let number = first + UInt32(index)
                if number == lock { continue }
                let page = UnsafeRawBufferPointer(rebasing: buffer[(index * pageSize)..<((index + 1) * pageSize)])
                let hash = PageChecksum.hash(page: page, number: number)
                checksum ^= hash
                let differs = try number > table.pageCount || table.hash(ofPage: number) != hash
                if differs {
                    try builder.appendFrame(pageNumber: number, page: page)
                    differing += 1
                }
            }
            first += UInt32(count)
        }
        if (differing > 0 || pages != table.pageCount) && pages > 0 {
            // Page 1 last (a later image wins when applied), unless it differed already.
            guard
                try connection.readDatabaseFile(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<pageSize]), at: 0)
            else { return nil }
            try builder.appendFrame(pageNumber: 1, page: UnsafeRawBufferPointer(rebasing: buffer[..<pageSize]))
            differing += 1
        }
        return DatabaseFileScan(index: index, pages: pages, differingPages: differing, checksum: checksum)
    }

    /// `PRAGMA quick_check` on the current read transaction: whether the database is
    /// structurally sound.
    func quickCheck() throws -> Bool {
        guard !connections.isEmpty else { return false }
        return try connections[current].textColumn("PRAGMA quick_check(1)") == ["ok"]
    }
}

extension WALFollower {
    /// Takes the txid and commit time of a transaction the loop shipped itself (read from the
    /// database file rather than the WAL).
    func resume(lastTxid: UInt64, lastCommitMs: UInt64) {
        self.lastTxid = lastTxid
        self.lastCommitMs = lastCommitMs
        progress.publish(lastTxid: lastTxid)
    }
}
