import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The single owner of one database's WAL position (DESIGN.md section 3, "One owner"): it keeps
/// the chain of read transactions, reads published commits from `-wal`, assigns txids and
/// commit times, and hands the frames to a `SegmentBuilder`. Everything else (snapshots,
/// shipping) asks it. Used from one thread; `progress` is the thread-safe view for others.
///
/// The chain: a read transaction is always open on one of two connections; the WAL is read only
/// after the current transaction began; the next one begins before the current one ends; and a
/// transaction ends only after a read that began after it started has reached the last
/// published frame. A checkpoint can copy frames only up to an open reader's mark, and a WAL
/// restart needs every frame copied, so no commit can be checkpointed away unseen.
///
/// Published, not just written: a commit frame is shipped only when a wal-index header read
/// before its bytes has `mxFrame` at or beyond it and the chain's checksum at `mxFrame` equals
/// the header's `aFrameCksum`.
final class WALFollower {
    let databasePath: String
    let walPath: String
    let logger: Logger
    let progress: FollowerProgress

    private(set) var connections: [Connection] = []
    private var checkpointer: Checkpointer?
    private let checkpointSettings: (busyTimeout: Duration, restart: Bool)
    /// Index in `connections` of the one holding the current read transaction.
    private(set) var current = 0
    let shm: SharedMemoryIndex
    private var wal: LocalFile?
    private var walIdentity: FileIdentity?
    private(set) var databaseIdentity: FileIdentity?
    /// The `-wal` file when the connections opened: SQLite neither deletes nor replaces it while
    /// a connection is open, so another file there means someone removed it under SQLite.
    private var connectedWALIdentity: FileIdentity?
    private(set) var cursor: WALCursor
    var lastTxid: UInt64
    var lastCommitMs: UInt64
    /// `mxFrame` of the last wal-index header read (the WAL's published length in frames).
    private(set) var lastMaxFrame: UInt32 = 0
    /// `PRAGMA page_size` of the database, read at open.
    private(set) var databasePageSize = 4096
    /// The newest frame of each page in the current WAL (the one `cursor` reads), for the drift
    /// checks: a page whose newest frame is not yet backfilled is not yet in the database file.
    private(set) var walPageFrames: [UInt32: UInt32] = [:]
    /// Whether `walPageFrames` covers every frame before the cursor (false when the follower
    /// started in the middle of a WAL; true again from the WAL's next restart).
    private(set) var walPageFramesComplete = false
    /// WAL restarts this follower has read across (the drift check needs to know whether frames
    /// not yet sealed into a segment all come from the current WAL).
    private(set) var restarts = 0
    let now: @Sendable () -> UInt64
    let metrics: ReplicationMetrics?

    /// What one poll did.
    enum Outcome: Equatable {
        /// Nothing new was published.
        case idle
        /// Transactions were accepted; `complete` says whether the read reached the last
        /// published frame (a partial read continues at once).
        case accepted(count: Int, complete: Bool)
        /// A consistent view could not be read (a writer or a restart raced the read); poll again.
        case raced
        /// The position cannot be followed: a new generation must start.
        case lost(ObjectHeader.GenerationReason, String)
    }

    init(
        databasePath: String, cursor: WALCursor, lastTxid: UInt64, lastCommitMs: UInt64, logger: Logger,
        progress: FollowerProgress, checkpointBusyTimeout: Duration = .milliseconds(50), checkpointRestart: Bool = true,
        metrics: ReplicationMetrics? = nil, now: @escaping @Sendable () -> UInt64
    ) {
        self.metrics = metrics
        self.checkpointSettings = (checkpointBusyTimeout, checkpointRestart)
        self.databasePath = databasePath
        self.walPath = databasePath + "-wal"
        self.shm = SharedMemoryIndex(databasePath: databasePath)
        self.cursor = cursor
        self.lastTxid = lastTxid
        self.lastCommitMs = lastCommitMs
        self.logger = logger
        self.progress = progress
        self.now = now
        progress.publish(lastTxid: lastTxid)
    }

    // MARK: Connections and the read chain

    /// Opens both connections, begins the first read transaction, then opens `-shm` (SQLite
    /// creates it at the first read). An I/O error is retried for a few seconds: after `-wal` was
    /// deleted, another replicator of this database in this process (another bucket) may still
    /// hold SQLite's stale wal-index until it notices and closes its connections too.
    func open() throws {
        var attempt = 0
        while true {
            close()
            // Joined before any connection opens, so the shared -shm descriptor cannot close
            // under this replicator's first read transaction.
            shm.register()
            do {
                try openConnections()
                return
            } catch  where Self.isIOError(error) && attempt < 25 {
                attempt += 1
                logger.debug("opening the database failed; retrying", metadata: ["error": "\(error)"])
                close()
                OnlineBackup.sleep(.milliseconds(200))
            } catch {
                close()
                throw error
            }
        }
    }

    private static func isIOError(_ error: any Error) -> Bool {
        if let error = error as? SQLiteError { return error.isIOError }
        if let error = error as? WalshipError, let cause = error.cause { return isIOError(cause) }
        return false
    }

    private func openConnections() throws {
        for _ in 0..<2 {
            connections.append(try Connection.openObserver(path: databasePath, busyTimeoutMilliseconds: 1000))
        }
        let mode = try connections[0].checkedJournalMode()
        guard mode == "wal" else {
            throw WalshipError(
                .databaseUnusable,
                "database '\(databasePath)' is in journal mode '\(mode)', not WAL: switch the application to WAL or pass --set-wal"
            )
        }
        current = 0
        do {
            try connections[0].beginReadTransaction()
        } catch let error as SQLiteError where error.isBusy {
            throw WalshipError(
                .databaseUnusable,
                "no read transaction can begin on '\(databasePath)': is the application using locking_mode=EXCLUSIVE?",
                cause: error)
        }
        try shm.open()
        checkpointer = Checkpointer(
            databasePath: databasePath, busyTimeout: checkpointSettings.busyTimeout,
            restart: checkpointSettings.restart, shared: shm.shared, metrics: metrics, clock: progress.clock,
            logger: logger)
        databasePageSize = try connections[0].pageSize()
        databaseIdentity = FileIdentity(path: databasePath)
        connectedWALIdentity = FileIdentity(path: walPath)
    }

    /// Ends every transaction and closes the connections (the checkpointer's too), then `-shm`.
    func close() {
        checkpointer?.stop()
        checkpointer = nil
        for connection in connections {
            try? connection.rollback()
            connection.close()
        }
        connections = []
        shm.close()
        try? wal?.close()
        wal = nil
        walIdentity = nil
        connectedWALIdentity = nil
    }

    /// Begins a read transaction on the other connection, then ends the current one. When the
    /// next one cannot begin, the current one is kept (and false returned).
    @discardableResult
    func rotate() -> Bool {
        let next = 1 - current
        do {
            try connections[next].beginReadTransaction()
        } catch {
            logger.debug("read transaction could not begin; keeping the current one", metadata: ["error": "\(error)"])
            return false
        }
        try? connections[current].rollback()
        current = next
        return true
    }

    /// Starts a bounded checkpoint when the published WAL is longer than `walMaxFrames` and not
    /// yet all copied into the database file. Returns whether a checkpoint is running (the
    /// caller then polls and rotates quickly, so the checkpoint finds the agent's reader on the
    /// newest snapshot).
    ///
    /// A WAL that is all backfilled needs no checkpoint: SQLite keeps its length until the next
    /// writer restarts it, and the agent's next read transaction reads from the database file,
    /// out of that writer's way. (Asking again anyway ran RESTART checkpoints back to back,
    /// each taking the writer lock, for as long as the application did not write.)
    func checkpointIfNeeded(walMaxFrames: UInt32) -> Bool {
        guard let checkpointer else { return false }
        // Another replicator of this database in this process (another bucket) may be the one
        // checkpointing: its RESTART waits for this reader too, and a second one would only
        // find the writer lock taken.
        let siblingRunning = !checkpointer.isBusy && shm.shared?.checkpointRunning == true
        if lastMaxFrame > walMaxFrames && !siblingRunning && !checkpointer.isBusy
            && (shm.readBackfill() ?? 0) < lastMaxFrame
        {
            checkpointer.request()
        }
        return checkpointer.isBusy || siblingRunning
    }

    /// Sleeps between polls; wakes early when a checkpoint of this database starts in this
    /// process, so the read transaction moves out of its way.
    func pause(_ duration: Duration) {
        if let shared = shm.shared { shared.pause(duration) } else { OnlineBackup.sleep(duration) }
    }

    // MARK: Positions

    /// Fills `walPageFrames` for the frames before the cursor that this follower did not read
    /// (it resumed in the middle of a WAL), from their frame headers: the drift checks need the
    /// newest frame of every page in the WAL, or they stay inconclusive until the WAL restarts,
    /// which a lightly written database may not do for hours. Frames whose salts are not the
    /// cursor's (a WAL restarted meanwhile) leave it incomplete. Returns whether it is complete.
    @discardableResult
    func completePageFrames() -> Bool {
        guard !walPageFramesComplete, cursor.frame > 0,
            let found = newestFrames(of: 1...cursor.frame, salt1: cursor.salt1, salt2: cursor.salt2)
        else { return walPageFramesComplete }
        walPageFrames.merge(found) { read, earlier in max(read, earlier) }
        walPageFramesComplete = true
        return true
    }

    /// The page numbers of published frames `frames` of the current WAL (salts checked), from
    /// their frame headers; nil when one cannot be read or has other salts.
    func pageNumbers(ofFrames frames: ClosedRange<UInt32>, salt1: UInt32, salt2: UInt32) -> Set<UInt32>? {
        newestFrames(of: frames, salt1: salt1, salt2: salt2).map { Set($0.keys) }
    }

    /// The newest of `frames` for each page they hold, from the frame headers (salts checked);
    /// nil when one cannot be read or has other salts.
    func newestFrames(
        of frames: ClosedRange<UInt32>, salt1: UInt32, salt2: UInt32, pageSize: Int? = nil
    ) -> [UInt32: UInt32]? {
        let pageSize = pageSize ?? cursor.pageSize
        guard let file = try? walFile() else { return nil }
        var found: [UInt32: UInt32] = [:]
        for frame in frames {
            guard
                let bytes = try? file.read(
                    count: WALFormat.frameHeaderSize, at: WALFormat.frameOffset(frame, pageSize: pageSize)),
                bytes.count == WALFormat.frameHeaderSize
            else { return nil }
            let (page, first, second) = bytes.withUnsafeBytes {
                ($0.bigEndianUInt32(at: 0), $0.bigEndianUInt32(at: 8), $0.bigEndianUInt32(at: 12))
            }
            guard first == salt1, second == salt2 else { return nil }
            found[page] = frame
        }
        return found
    }

    /// Takes `position` as the cursor (same WAL, refined fields such as the checksum byte order).
    func adopt(_ position: WALCursor) {
        if position.frame != cursor.frame || !position.hasSalts(cursor.salt1, cursor.salt2) {
            walPageFrames = [:]
            walPageFramesComplete = position.frame == 0
        }
        cursor = position
    }

    func readWALHeader() -> WALFormat.Header? {
        guard let file = try? walFile() else { return nil }
        guard let bytes = try? file.read(count: WALFormat.headerSize, at: 0), bytes.count == WALFormat.headerSize
        else { return nil }
        return bytes.withUnsafeBytes { WALFormat.Header.parse($0) }
    }

    /// The `-wal` descriptor, reopened when the file was replaced.
    func walFile() throws -> LocalFile {
        let identity = FileIdentity(path: walPath)
        if let wal, identity == walIdentity { return wal }
        try? wal?.close()
        wal = nil
        guard identity != nil else { throw WalshipError(.databaseUnusable, "'\(walPath)' does not exist") }
        wal = try LocalFile.openForReading(walPath)
        walIdentity = identity
        return wal!
    }

    /// Starts a generation here: the position becomes the end of what SQLite has published (all
    /// of which the generation's snapshot will contain). Returns false when the view raced.
    func positionAtPublishedEnd() -> Bool {
        guard let index = shm.readHeader() else { return false }
        return position(at: index)
    }

    /// Positions at the end of what `index` (a wal-index header read under the current read
    /// transaction) published. Returns false when the WAL header raced it.
    func position(at index: WALIndexHeader) -> Bool {
        lastMaxFrame = index.maxFrame
        walPageFrames = [:]
        walPageFramesComplete = index.maxFrame == 0
        let header = readWALHeader()
        if let header, header.salt1 == index.salt1, header.salt2 == index.salt2 {
            var position = WALCursor(header: header)
            if index.maxFrame > 0 {
                position.frame = index.maxFrame
                position.checksum = index.frameChecksum
            }
            cursor = position
            return true
        }
        if index.maxFrame == 0 {
            cursor = header.map { WALCursor(header: $0) } ?? .noWAL(pageSize: index.pageSize)
            return true
        }
        return false
    }

    /// After `scanDatabaseFile` read only the file (it had every frame `index` published): when
    /// a writer restarted the WAL since, positions at the restarted WAL's first frame and returns
    /// true. The read transaction sat on slot 0 (the file had everything when it began; on a
    /// higher slot it would have kept the WAL from restarting), which does not stop a restart but
    /// stops every checkpoint: the file is exactly what the restarted WAL starts from, and no
    /// second restart can follow while the transaction holds (nothing can be copied).
    func positionAtRestart(after index: WALIndexHeader) -> Bool {
        guard let header = readWALHeader(), header.salt1 != index.salt1 || header.salt2 != index.salt2,
            header.pageSize == index.pageSize
        else { return false }
        lastMaxFrame = 0
        walPageFrames = [:]
        walPageFramesComplete = true
        cursor = WALCursor(header: header)
        return true
    }

    /// After a break (start, crash, `--once`): whether the WAL still holds the recorded position,
    /// same salts and the recorded checksum at the recorded frame.
    /// A WAL that is missing or empty, or a position recorded when there was none, proves nothing:
    /// the application may have written, checkpointed and deleted a whole WAL in between.
    func walStillHolds(_ position: WALCursor) -> Bool {
        var frame: WALFormat.FrameHeader?
        if position.frame > 0, let file = try? walFile(),
            let bytes = try? file.read(
                count: WALFormat.frameHeaderSize, at: WALFormat.frameOffset(position.frame, pageSize: position.pageSize)
            ),
            bytes.count == WALFormat.frameHeaderSize
        {
            frame = bytes.withUnsafeBytes { WALFormat.FrameHeader.parse($0) }
        }
        return ContinuityDecision.walHolds(position, header: readWALHeader(), frameAtPosition: frame)
    }

    // MARK: Polling

    /// Reads what SQLite has published since the cursor into `builder`. `catchUp` marks
    /// transactions read after a break as late, and refuses to follow a WAL restart (after a
    /// break, a restart cannot be proven continuous).
    func poll(into builder: SegmentBuilder, maxBytes: Int64, catchUp: Bool) throws -> Outcome {
        let pollNumber = progress.beginPoll()
        if let problem = identityProblem() { return .lost(.databaseReplaced, problem) }
        guard let index = shm.readHeader() else { return raced("the wal-index header's two copies differ") }
        lastMaxFrame = index.maxFrame
        if !cursor.hasSalts(index.salt1, index.salt2) {
            if catchUp {
                // After a break, a restart (pending or done) means frames after the recorded
                // position may have been checkpointed and overwritten unseen.
                return .lost(.continuityLost, "the WAL was restarted while walship was not watching it")
            }
            if index.maxFrame == 0 {
                // A restart is pending (the next writer starts a new WAL): nothing is published.
                progress.completePoll(pollNumber)
                return .idle
            }
            guard let header = readWALHeader(), header.salt1 == index.salt1, header.salt2 == index.salt2 else {
                return raced("the WAL header's salts are not the wal-index's (\(index.salt1), \(index.salt2))")
            }
            if header.pageSize != cursor.pageSize && cursor != .noWAL(pageSize: cursor.pageSize) {
                return .lost(.pageSizeChanged, "the page size changed from \(cursor.pageSize) to \(header.pageSize)")
            }
            logger.debug("WAL restarted", metadata: ["wal.salt1": "\(header.salt1)", "wal.frame": "\(cursor.frame)"])
            restarts += 1
            cursor = WALCursor(header: header)
            walPageFrames = [:]
            walPageFramesComplete = true
        }
        if index.maxFrame < cursor.frame {
            return .lost(
                .walInconsistent,
                "the wal-index shows \(index.maxFrame) frames, fewer than the \(cursor.frame) already read")
        }
        if index.maxFrame == cursor.frame {
            if cursor.frame > 0 && index.frameChecksum != cursor.checksum {
                return .lost(.walInconsistent, "the checksum at frame \(cursor.frame) changed under the same salts")
            }
            progress.completePoll(pollNumber)
            return .idle
        }
        let file = try walFile()
        var frame = cursor.frame
        let scan = try WALScanner(file: file, cursor: cursor).scan(through: index.maxFrame, maxBytes: maxBytes) {
            pageNumber, page in
            frame += 1
            walPageFrames[pageNumber] = frame
            try builder.appendFrame(pageNumber: pageNumber, page: page)
        }
        let reachedPublishedEnd = scan.lastValidFrame == index.maxFrame && scan.trailingFrames == 0
        if reachedPublishedEnd && scan.checksumAfterLastValid != index.frameChecksum {
            try builder.discardPending()
            return raced("the checksum at frame \(index.maxFrame) is not the wal-index's")
        }
        guard let lastCommit = scan.commits.last else {
            try builder.discardPending()
            return raced(
                "no commit could be read between frame \(cursor.frame) and frame \(index.maxFrame) (last valid frame \(scan.lastValidFrame))"
            )
        }
        var accepted: [SegmentFormat.Transaction] = []
        accepted.reserveCapacity(scan.commits.count)
        let readAt = max(now(), lastCommitMs)
        for commit in scan.commits {
            lastTxid += 1
            accepted.append(
                SegmentFormat.Transaction(
                    txid: lastTxid, commitMs: readAt, databasePages: commit.databasePages,
                    frameCount: commit.frameCount,
                    isLate: catchUp))
        }
        lastCommitMs = readAt
        cursor.frame = lastCommit.frame
        cursor.checksum = lastCommit.checksum
        try builder.accept(accepted, cursor: cursor)
        progress.publish(lastTxid: lastTxid)
        let complete = reachedPublishedEnd
        if complete { progress.completePoll(pollNumber) }
        if scan.stoppedEarly && !complete { return raced("the read stopped early at frame \(cursor.frame)") }
        return .accepted(count: accepted.count, complete: complete)
    }

    /// Begins and ends a read transaction on the idle connection while the current one keeps its
    /// read mark: SQLite rebuilds a wal-index left inconsistent (a writer killed while updating
    /// its header) when a read begins, and the agent's own reads, which take the header as it is,
    /// would otherwise race until the application's next transaction. The pin stays untouched.
    func refreshIndex() {
        guard connections.count == 2 else { return }
        let other = connections[1 - current]
        do {
            try other.beginReadTransaction()
            try other.rollback()
        } catch {
            logger.debug("a read transaction to refresh the wal-index could not begin", metadata: ["error": "\(error)"])
        }
    }

    private func raced(_ why: String) -> Outcome {
        progress.raced(why)
        return .raced
    }

    /// Why the database can no longer be followed (replaced, `-wal` gone while connected), or nil.
    private func identityProblem() -> String? {
        guard let databaseIdentity else { return nil }
        guard let now = FileIdentity(path: databasePath) else { return "the database file disappeared" }
        if now != databaseIdentity { return "the database file was replaced" }
        if !connections.isEmpty {
            guard let wal = FileIdentity(path: walPath) else {
                return "'\(walPath)' disappeared while walship was connected"
            }
            // Removed and created again (by another connection of this process, or an app
            // connection opening after the removal).
            if let connectedWALIdentity, wal != connectedWALIdentity {
                return "'\(walPath)' was replaced while walship was connected"
            }
        }
        return nil
    }
}
