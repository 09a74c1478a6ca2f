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
        /// Pages read from WAL frames the file lacked.
        var pagesFromWAL: Int
        /// Whether the file had every frame `index` publishes (nothing was read from the WAL).
        var fileOnly: Bool
    }

    /// Scans the database as the current read transaction's wal-index header publishes it: each
    /// page from the newest published WAL frame the file lacks (past the backfill), else from the
    /// file; hashes every page, compares it with `table` and appends each page that differs to
    /// `builder` as a pending frame. nil when the WAL or the file does not read consistently
    /// (other salts, a short file) or the file is not a whole number of pages.
    ///
    /// Nothing read moves meanwhile (DESIGN.md section 3): a checkpoint copies only frames up to
    /// the oldest read mark above slot 0, and none while a reader holds slot 0, so it writes only
    /// pages that are read from the WAL here; the WAL restarts only once everything is copied
    /// and no reader holds a mark above slot 0, which a published frame past the backfill rules
    /// out. So the application's commits made before the agent held its read transaction (it
    /// started first, or with the agent) need neither a checkpoint nor a new generation.
    ///
    /// Page 1 is appended whenever any other page differs (or the size does): its hash masks the
    /// header fields a backup copy rewrites, and one of them, the in-header database size, must
    /// reach a restore exactly as the database has it.
    func scanDatabaseFile(comparingWith table: PageHashTable, into builder: SegmentBuilder) throws -> DatabaseFileScan?
    {
        guard let index = shm.readHeader(), let backfill = shm.readBackfill(), backfill <= index.maxFrame,
            !connections.isEmpty
        else { return nil }
        let connection = connections[current]
        let pageSize = databasePageSize
        guard let source = try DatabaseSource(follower: self, index: index, backfill: backfill, pageSize: pageSize)
        else { return nil }
        let size = try connection.databaseFileSize()
        guard size % Int64(pageSize) == 0 else { return nil }
        let filePages = UInt32(size / Int64(pageSize))
        let pages = source.frames.isEmpty ? filePages : index.databasePages
        let lock = PageChecksum.lockPage(pageSize: pageSize)
        let perRead = max(1, (1 << 20) / pageSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: perRead * pageSize, alignment: 16)
        defer { buffer.deallocate() }
        var checksum: UInt64 = 0
        var differing = 0
        var fromWAL = 0
        var first: UInt32 = 1
        while first <= pages {
            let count = Int(min(UInt32(perRead), pages - first + 1))
            let fromFile = min(count, Int(filePages >= first ? filePages - first + 1 : 0))
            if fromFile > 0 {
                let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[..<(fromFile * pageSize)])
                guard try connection.readDatabaseFile(into: chunk, at: Int64(first - 1) * Int64(pageSize)) else {
                    return nil
                }
            }
            for index in 0..<count {
                let number = first + UInt32(index)
                if number == lock { continue }
                let page = UnsafeMutableRawBufferPointer(
                    rebasing: buffer[(index * pageSize)..<((index + 1) * pageSize)])
                // A page the file does not have yet must come from the WAL.
                if try source.overlay(page: number, into: page) {
                    fromWAL += 1
                } else if index >= fromFile {
                    return nil
                }
                let hash = PageChecksum.hash(page: UnsafeRawBufferPointer(page), number: number)
                checksum ^= hash
                let differs = try number > table.pageCount || table.hash(ofPage: number) != hash
                if differs {
                    try builder.appendFrame(pageNumber: number, page: UnsafeRawBufferPointer(page))
                    differing += 1
                }
            }
            first += UInt32(count)
        }
        if (differing > 0 || pages != table.pageCount) && pages > 0 {
            // Page 1 last (a later image wins when applied), unless it differed already.
            let page = UnsafeMutableRawBufferPointer(rebasing: buffer[..<pageSize])
            if try !source.overlay(page: 1, into: page) {
                guard try connection.readDatabaseFile(into: page, at: 0) else { return nil }
            }
            try builder.appendFrame(pageNumber: 1, page: UnsafeRawBufferPointer(page))
            differing += 1
        }
        // The WAL read still had the header's salts at the end (a restart would have changed them).
        guard source.stillCurrent() else { return nil }
        return DatabaseFileScan(
            index: index, pages: pages, differingPages: differing, checksum: checksum,
            pagesFromWAL: fromWAL, fileOnly: source.frames.isEmpty)
    }

    /// Where `scanDatabaseFile` reads pages the file lacks: each page's newest published frame
    /// past the backfill, in the WAL that the wal-index header names.
    struct DatabaseSource {
        let follower: WALFollower
        let index: WALIndexHeader
        let pageSize: Int
        /// Page number to frame, for frames past the backfill; empty when the file has everything.
        let frames: [UInt32: UInt32]

        /// nil when the WAL does not hold what the header publishes (other salts or page size).
        init?(follower: WALFollower, index: WALIndexHeader, backfill: UInt32, pageSize: Int) throws {
            self.follower = follower
            self.index = index
            self.pageSize = pageSize
            guard backfill < index.maxFrame else {
                frames = [:]
                return
            }
            guard let header = follower.readWALHeader(), header.salt1 == index.salt1, header.salt2 == index.salt2,
                header.pageSize == pageSize,
                let found = follower.newestFrames(
                    of: (backfill + 1)...index.maxFrame, salt1: index.salt1, salt2: index.salt2, pageSize: pageSize)
            else { return nil }
            frames = found
        }

        /// Reads `page` from its newest frame into `buffer`; false when the file has it.
        func overlay(page: UInt32, into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
            guard let frame = frames[page] else { return false }
            let offset = WALFormat.frameOffset(frame, pageSize: pageSize) + Int64(WALFormat.frameHeaderSize)
            guard try follower.walFile().read(into: buffer, at: offset) == pageSize else {
                throw WalshipError(.databaseUnusable, "the WAL ended inside frame \(frame)")
            }
            return true
        }

        /// Whether the WAL still has the header's salts (always true when nothing was read from it).
        func stillCurrent() -> Bool {
            guard !frames.isEmpty else { return true }
            guard let header = follower.readWALHeader() else { return false }
            return header.salt1 == index.salt1 && header.salt2 == index.salt2
        }
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

/// Drift detection (issue 15): the database file must hold what the shipped transactions say.
extension WALFollower {
    /// What one drift check found.
    enum DriftCheck: Equatable {
        /// The pages checked hold the shipped state.
        case consistent
        /// The WAL moved during the check (or its state could not be read): try again later.
        case inconclusive
        /// The file differs from the shipped state in a way no checkpoint explains.
        case drift(String)
    }

    /// Compares the database file with `table` (the state after the last shipped transaction,
    /// which must be everything this follower has read): its size, page 1, and the
    /// `budgetBytes` of pages from `scanFrom` on (a rolling scan; `scanFrom` advances and wraps).
    /// Pages whose newest WAL frame is not yet backfilled are skipped: the file lags behind the
    /// WAL for them. The check is sound under concurrent checkpoints: a checkpoint writes only
    /// pages with frames after `nBackfill`, and the result counts only when the wal-index shows
    /// the same WAL end before and after (nothing new that a checkpoint could copy meanwhile).
    ///
    /// `shippedFrame` is the frame of the current WAL up to which `table` holds the state (nil when
    /// unknown): with frames unread or unsealed, a page whose newest frame is at or below both it
    /// and `nBackfill` is still compared, because SQLite reads such frames from the file (a copy
    /// put back over pages a checkpoint had already copied is found there).
    func checkDrift(
        table: PageHashTable, scanFrom: inout UInt32, budgetBytes: Int, unsealed: Bool = false,
        shippedFrame: UInt32? = nil
    ) throws
        -> DriftCheck
    {
        guard !connections.isEmpty, let before = shm.readHeader(), let backfill = shm.readBackfill() else {
            return .inconclusive
        }
        // Everything published has been read, or a restart is pending after a complete backfill
        // of a WAL this follower read to its end (the wal-index keeps the last frame's checksum).
        // Or no frame was published since this follower positioned itself (it started while a
        // restart was pending, or with no WAL): the file alone holds the state. Or (steady
        // writes) the same WAL holds frames this follower has not read yet: their pages are
        // skipped like any page the WAL holds.
        let sameSalts = cursor.hasSalts(before.salt1, before.salt2)
        let sameWAL = sameSalts && before.maxFrame == cursor.frame
        let restartAfterOurEnd = before.maxFrame == 0 && before.frameChecksum == cursor.checksum
        let nothingPublished = before.maxFrame == 0 && cursor.frame == 0
        let ahead = sameSalts && before.maxFrame > cursor.frame
        guard sameWAL || restartAfterOurEnd || nothingPublished || ahead else { return .inconclusive }
        let fullyBackfilled = !ahead && !unsealed && (before.maxFrame == 0 || backfill >= before.maxFrame)
        guard fullyBackfilled || completePageFrames() else { return .inconclusive }
        guard let unread = ahead ? unreadPages(through: before) : [] else { return .inconclusive }
        // A page the WAL holds may be newer in the file than in the shipped state (a checkpoint
        // copied a frame the shipped state does not hold yet): skipped when its newest frame is
        // unread, unsealed (after `shippedFrame`; any frame when that is unknown), or not yet
        // backfilled (the file lags). The others are in the file as shipped.
        let strict = !ahead && !unsealed
        func superseded(_ page: UInt32) -> Bool {
            if unread.contains(page) { return true }
            guard !fullyBackfilled, let frame = walPageFrames[page] else { return false }
            if strict { return frame > backfill }
            guard let shippedFrame else { return true }
            return frame > min(shippedFrame, backfill)
        }
        let connection = connections[current]
        let pageSize = databasePageSize
        guard table.pageSize == pageSize else { return .inconclusive }
        let pages = table.pageCount
        let fileSize = try connection.databaseFileSize()
        let expectedSize = Int64(pages) * Int64(pageSize)
        var problem: String?
        var problemPage: UInt32?
        // A complete checkpoint truncates the file to the database size (a chunk size set with
        // SQLITE_FCNTL_CHUNK_SIZE rounds it up, so only a shorter file is certain drift).
        if fullyBackfilled && fileSize < expectedSize {
            problem =
                "the database file is \(fileSize) bytes, but the shipped state after txid \(table.txid) is \(pages) pages of \(pageSize) bytes (\(expectedSize) bytes)"
        }
        let lock = PageChecksum.lockPage(pageSize: pageSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { buffer.deallocate() }
        func differs(_ number: UInt32) throws -> Bool {
            guard number >= 1, number <= pages, number != lock, !superseded(number) else { return false }
            let offset = Int64(number - 1) * Int64(pageSize)
            if offset + Int64(pageSize) > fileSize { return !ahead && !unsealed }
            guard try connection.readDatabaseFile(into: buffer, at: offset) else { return !ahead && !unsealed }
            return try PageChecksum.hash(page: UnsafeRawBufferPointer(buffer), number: number)
                != table.hash(ofPage: number)
        }
        if problem == nil, try differs(1) {
            problem = "page 1 of the database file differs from the shipped state after txid \(table.txid)"
            problemPage = 1
        }
        if problem == nil,
            let page = try Self.rollingScan(
                pages: pages, budget: budgetBytes / pageSize + (budgetBytes % pageSize == 0 ? 0 : 1), from: &scanFrom,
                differs: differs)
        {
            problem = "page \(page) of the database file differs from the shipped state after txid \(table.txid)"
            problemPage = page
        }
        guard stillHolds(before, backfill: backfill, strict: strict, problemPage: problemPage) else {
            return .inconclusive
        }
        return problem.map { .drift($0) } ?? .consistent
    }

    /// The drift check's rolling scan over pages 2...`pages`: at most `budget` pages from `from`, which advances and wraps; the first page that `differs`, where the scan
    /// stops (the next check starts there again).
    static func rollingScan(
        pages: UInt32, budget: Int, from: inout UInt32, differs: (UInt32) throws -> Bool
    ) rethrows -> UInt32? {
        guard pages > 1 else { return nil }
        if from < 2 || from > pages { from = 2 }
        var checked = 0
        while checked < budget && checked < Int(pages) - 1 {
            if try differs(from) { return from }
            checked += 1
            from = from >= pages ? 2 : from + 1
        }
        return nil
    }

    /// The page numbers of the published frames after the cursor (same salts), or nil.
    private func unreadPages(through before: WALIndexHeader) -> Set<UInt32>? {
        pageNumbers(ofFrames: (cursor.frame + 1)...before.maxFrame, salt1: before.salt1, salt2: before.salt2)
    }

    /// Whether what a drift check saw still stands after it: the same WAL; in the strict mode
    /// nothing published or backfilled meanwhile; otherwise no frame published meanwhile holds
    /// the page found different (a checkpoint may have copied it into the file).
    private func stillHolds(_ before: WALIndexHeader, backfill: UInt32, strict: Bool, problemPage: UInt32?) -> Bool {
        guard let after = shm.readHeader(), after.salt1 == before.salt1, after.salt2 == before.salt2,
            after.maxFrame >= before.maxFrame
        else { return false }
        if strict { return after == before && shm.readBackfill() == backfill }
        guard let problemPage, after.maxFrame > before.maxFrame else { return true }
        guard
            let pages = pageNumbers(
                ofFrames: (before.maxFrame + 1)...after.maxFrame, salt1: after.salt1, salt2: after.salt2)
        else { return false }
        return !pages.contains(problemPage)
    }
}
