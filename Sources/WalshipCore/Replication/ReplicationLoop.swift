import Logging

/// The WAL side of replicating one database, run on its own thread: it owns the `WALFollower`
/// and the open segment, decides when a generation starts (DESIGN.md section 3, "Continuity"),
/// cuts segments every `sync-interval` or at `segment-max-bytes`, keeps the WAL bounded with its
/// checkpoints, and asks for snapshots. Uploads and snapshots happen elsewhere; this loop never
/// waits for the store.
final class ReplicationLoop {
    struct Start: Sendable {
        var inventory: ReplicaInventory
        /// Headers of objects still in the spool.
        var spooled: [ObjectHeader]
        /// The header of the newest segment of the saved generation in the bucket, if any.
        var newestStoredSegment: ObjectHeader?
    }

    let databasePath: String
    /// `Replica.location`, recorded in the state: a state written for another replica is not used.
    let replicaLocation: String
    let settings: ReplicationSettings
    let spool: Spool
    let statePath: String
    let logger: Logger
    let progress: FollowerProgress
    /// The clock that race streaks, segment ages and the start's check are measured on.
    let clock: any MonotonicClock
    let snapshots = SnapshotBook()
    let snapshotGate = SnapshotGate()
    let now: @Sendable () -> UInt64
    let requestSnapshot: @Sendable (Snapshotter.Request) -> Void
    /// The identity written into every object (`DatabaseID`).
    var databaseID: DatabaseID = .unknown
    /// Where the database was restored from, when `walship restore` wrote it: the next
    /// generation is linked to that point.
    var restored: RestoredMarker?

    var follower: WALFollower?
    var builder: SegmentBuilder?
    /// The hashes of the pages of the state after the last sealed transaction (`PageHashTable`).
    private(set) var table: PageHashTable?
    /// A snapshot's page hashes waiting until the table reaches its `usableTxid`.
    var pendingPageHashOffer: FollowerProgress.PageHashOffer?
    /// The drift checks' rolling scan position and last run.
    var driftScanFrom: UInt32 = 2
    /// The follower and its WAL restarts when nothing was left unsealed (see `checkDrift`).
    var restartsAtSeal: (ObjectIdentifier, Int)?
    /// The start compared the whole file with the page hashes (`checkDriftAtStart`): a `--once`
    /// run need not do it again before it exits.
    var checkedWholeFileAtStart = false
    /// The frame of the current WAL up to which the page-hash table holds the shipped state (the
    /// last seal, the resume position, a new generation's start); nil when not known (then the
    /// drift checks skip every page the WAL holds while transactions are unsealed).
    var sealedFrame: UInt32?
    var lastDriftCheck: ContinuousClock.Instant?
    var builderIsEmpty: Bool { builder?.isEmpty ?? true }
    private(set) var state: ReplicaState?
    /// The newest generation the replica listed at start, for the lineage of a new generation.
    private var newestStoredGeneration: GenerationID?
    private var segmentStarted: ContinuousClock.Instant?
    private var previousSegment: (txid: UInt64, sha: [UInt8]) = (0, [])
    var lastTxid: UInt64 = 0
    var lastCommitMs: UInt64 = 0
    var shippedTransactions = 0
    private(set) var generationsStarted = 0
    /// Set while a checkpoint runs: the loop then polls and rotates every few milliseconds.
    private(set) var fastPoll = false
    /// When the polls started racing without a break, and when the wal-index was last refreshed
    /// meanwhile (nil while the last poll did not race).
    private var racing: (since: ContinuousClock.Instant, refreshed: ContinuousClock.Instant)?
    /// How long polls may race in a row before the read chain counts as broken. A race is a
    /// writer or a restart caught mid-read, and the next poll normally reads a consistent view;
    /// polls that race on and on would keep the agent's read mark where it is, so the
    /// application's checkpoints could never restart the WAL (one 10-minute torture run saw the
    /// agent stop polling after a start; this bounds such a stall, whatever its cause).
    static let racingLimit: Duration = .seconds(20)
    /// Moves the replica lock to the file now at the database path when it was replaced (see
    /// `ReplicaLock.follow`); nil without a replica lock.
    var followReplicaLock: (() throws -> Void)?
    /// Code run on the loop's thread in windows tests must hit exactly.
    struct TestHooks: Sendable {
        /// After a catch-up read reached the published end, before the WAL header is checked
        /// again (to restart the WAL in exactly that window).
        var afterCatchUpRead: (@Sendable () -> Void)?
        /// After the start's content check read the database, before the follower is positioned
        /// (to commit, and restart the WAL, in exactly that window).
        var afterContentScan: (@Sendable () -> Void)?
    }

    /// Tests only.
    var testHooks = TestHooks()

    let metrics: ReplicationMetrics

    init(
        databasePath: String, replicaLocation: String, settings: ReplicationSettings, spool: Spool, statePath: String,
        logger: Logger, metrics: ReplicationMetrics = ReplicationMetrics(), now: @escaping @Sendable () -> UInt64,
        clock: any MonotonicClock = ContinuousClock(),
        requestSnapshot: @escaping @Sendable (Snapshotter.Request) -> Void
    ) {
        self.clock = clock
        self.progress = FollowerProgress(clock: clock)
        self.metrics = metrics
        self.databasePath = databasePath
        self.replicaLocation = replicaLocation
        self.settings = settings
        self.spool = spool
        self.statePath = statePath
        self.logger = logger
        self.now = now
        self.requestSnapshot = requestSnapshot
    }

    var generation: GenerationID? { state?.generation }

    /// Sleeps between polls (see `WALFollower.pause`).
    func pause(_ duration: Duration) {
        progress.doing(.pausing)
        if let follower { follower.pause(duration) } else { OnlineBackup.sleep(duration) }
    }

    // MARK: Start

    /// Continues the saved generation when continuity can be proven, else starts a new one
    /// (`ContinuityDecision` holds the rules; this gathers the facts and acts on them).
    func start(_ start: Start) throws {
        let stateFile = ReplicaState.load(from: statePath)
        let facts = ContinuityDecision.Facts(
            saved: stateFile, replicaLocation: replicaLocation, restored: restored, inventory: start.inventory,
            spooled: start.spooled, newestStoredSegment: start.newestStoredSegment,
            savedGenerationAbandoned: stateFile.map { spool.isAbandoned($0.generation) } ?? false,
            databaseFile: FileIdentity(path: databasePath))
        newestStoredGeneration = start.inventory.generations.last
        lastTxid = facts.lastTxid
        // Commit times never go back across the replica, even from a host whose clock is behind:
        // restore by time picks the newest generation that started at or before the target.
        lastCommitMs = max(lastCommitMs, start.inventory.newestMs, start.spooled.map(\.lastMs).max() ?? 0)
        let newestStoredSegment = start.inventory.segments.max { $0.lastTxid < $1.lastTxid }
        let pendingSince = start.spooled.filter { $0.kind == .segment }.map(\.firstMs).min()
        metrics.record { values in
            values.shippedTxid = newestStoredSegment?.lastTxid ?? 0
            values.shippedCommitMs = newestStoredSegment?.lastMs ?? 0
            values.pendingSinceMs = pendingSince
        }
        let resume: ContinuityDecision.Resume
        switch ContinuityDecision.beforeReading(facts) {
        case .resume(let position): resume = position
        case .newGeneration(let reason, let why): return try startGeneration(reason, why)
        case .checkContent, .continueGeneration: preconditionFailure("beforeReading decides resume or new generation")
        }
        let (saved, resumeTxid) = (resume.state, resume.txid)
        let (follower, cursor) = try openResumed(resume)
        let resumed = (txid: lastTxid, commitMs: lastCommitMs, shipped: shippedTransactions)
        var decision = try ContinuityDecision.afterWAL(
            recordedPageSize: cursor.pageSize, databasePageSize: follower.databasePageSize
        ) { try follower.walStillHolds(cursor) && catchUp() ? .bridges : .broken }
        if decision == .checkContent {
            // Nothing read after the break is trusted when continuity cannot be proven: it must
            // not be shipped in the saved generation, whose txids the new generation continues.
            builder?.close()
            builder = nil
            (lastTxid, lastCommitMs, shippedTransactions) = resumed
            decision = ContinuityDecision.byContent(try continueByContent(resumeTxid: resumeTxid))
        } else if decision == .continueGeneration {
            // The transactions caught up were written over whatever the file held meanwhile:
            // they go into the generation only once the file is shown to be its shipped state.
            if try checkDriftAtStart() { return }
            try cutSegmentIfDue(force: true)
            logger.info(
                "continuing generation",
                metadata: ["db.path": "\(databasePath)", "generation": "\(saved.generation)", "txid": "\(lastTxid)"])
        }
        switch decision {
        case .newGeneration(let reason, let why): try startGeneration(reason, why)
        case .continueGeneration: finishContinuing(saved, start)
        case .resume, .checkContent: preconditionFailure("afterWAL and byContent decide")
        }
    }

    /// Opens the saved generation at the position `beforeReading` chose: its page hashes, the
    /// WAL cursor of its newest segment, a follower and a segment builder. Nothing is read yet.
    private func openResumed(_ resume: ContinuityDecision.Resume) throws -> (WALFollower, WALCursor) {
        let (saved, newest, resumeTxid) = (resume.state, resume.newestSegment, resume.txid)
        // The page hashes of the state the generation resumes from (partial when a previous run
        // could not leave them: a snapshot then completes them).
        let pageSize = Int(newest?.pageSize ?? UInt32(saved.baseCursor.pageSize))
        table =
            try PageHashTable.load(
                directory: pagesDirectory, generation: saved.generation, txid: resumeTxid, pageSize: pageSize)
            ?? PageHashTable.startPartial(
                directory: pagesDirectory, generation: saved.generation, txid: resumeTxid, pageSize: pageSize,
                pageCount: newest?.databasePages ?? 0)
        var cursor = saved.baseCursor
        if let newest {
            cursor.salt1 = newest.walSalt1
            cursor.salt2 = newest.walSalt2
            cursor.frame = newest.walFrame
            cursor.checksum = newest.walChecksum
            cursor.pageSize = Int(newest.pageSize)
            previousSegment = (newest.lastTxid, newest.payloadSHA256)
        } else {
            previousSegment = (saved.baseTxid, [])
        }
        progress.sealedThrough = previousSegment.txid
        lastCommitMs = max(lastCommitMs, newest?.lastMs ?? saved.startedMs)
        let follower = WALFollower(
            databasePath: databasePath, cursor: cursor, lastTxid: lastTxid, lastCommitMs: lastCommitMs, logger: logger,
            progress: progress, checkpointBusyTimeout: settings.checkpointBusyTimeout,
            checkpointRestart: settings.checkpointRestart, metrics: metrics, now: now)
        try follower.open()
        self.follower = follower
        if let header = follower.readWALHeader(), header.salt1 == cursor.salt1, header.salt2 == cursor.salt2 {
            cursor.bigEndianChecksum = header.bigEndianChecksum
            follower.adopt(cursor)
        }
        state = saved
        progress.generation = saved.generation
        builder = try SegmentBuilder(directory: spool.directory, pageSize: cursor.pageSize)
        sealedFrame = cursor.frame
        return (follower, cursor)
    }

    /// The snapshot bookkeeping of a continued generation.
    private func finishContinuing(_ saved: ReplicaState, _ start: Start) {
        let hasSnapshot =
            !start.inventory.snapshots(of: saved.generation).isEmpty
            || start.spooled.contains { $0.kind == .snapshot && $0.generation == saved.generation.value }
        snapshots.reset(
            generation: saved.generation, hasSnapshot: hasSnapshot, lastTakenMs: saved.lastSnapshotMs,
            lastTxid: saved.lastSnapshotTxid)
        if !hasSnapshot { askForSnapshot() }
        wantPageHashesIfPartial()
        metrics.record { values in
            values.generation = saved.generation
            values.generationStartedMs = saved.generation.createdMilliseconds
        }
    }

    /// Reads everything published since the recorded position (marked late), then checks that
    /// the WAL header still shows the same salts: the first read transaction after a break may
    /// sit on slot 0, which does not stop a restart.
    private func catchUp() throws -> Bool {
        guard let follower, let builder else { return false }
        progress.doing(.catchingUp)
        for _ in 0..<10_000 {
            switch try follower.poll(into: builder, maxBytes: settings.segmentMaxBytes, catchUp: true) {
            case .idle, .accepted(_, true):
                let salts = (follower.cursor.salt1, follower.cursor.salt2)
                testHooks.afterCatchUpRead?()
                guard ContinuityDecision.catchUpBridges(endedWith: salts, headerAfter: follower.readWALHeader()) else {
                    return false
                }
                syncFromFollower()
                follower.rotate()
                return true
            case .accepted(_, false):
                // Kept in the builder (a file) until continuity is proven below: nothing read
                // after a break is shipped before that.
                syncFromFollower()
            case .raced:
                OnlineBackup.sleep(.milliseconds(5))
            case .lost:
                return false
            }
        }
        return false
    }

    private func syncFromFollower() {
        guard let follower else { return }
        let before = lastTxid
        lastTxid = follower.lastTxid
        lastCommitMs = follower.lastCommitMs
        shippedTransactions += Int(lastTxid - before)
        let (txid, commitMs, frames, pageSize) =
            (lastTxid, lastCommitMs, follower.lastMaxFrame, follower.databasePageSize)
        metrics.record { values in
            if txid > before && values.pendingSinceMs == nil { values.pendingSinceMs = commitMs }
            values.transactionsObserved += txid - before
            values.observedTxid = txid
            values.observedCommitMs = commitMs
            values.walFrames = frames
            values.pageSize = pageSize
        }
    }

    // MARK: Generations

    /// Starts a new generation at the end of what SQLite has published, and asks for its snapshot.
    func startGeneration(_ reason: ObjectHeader.GenerationReason, _ why: String) throws {
        progress.doing(.startingGeneration)
        try cutSegmentIfDue(force: true)
        progress.doing(.closingSnapshot)
        snapshotGate.closeAndWait()
        progress.doing(.startingGeneration)
        follower?.close()
        builder?.close()
        // A replaced database file: the replica lock moves to the new file first.
        try followReplicaLock?()
        // The lineage continues from this agent's generation; without one, from the newest
        // generation in the replica; a restored database's, from the point it was restored from.
        var predecessor = state?.generation ?? newestStoredGeneration
        // The new generation's first state (its snapshot) gets a txid of its own: it may hold
        // commits made while nobody watched, so it must never share a txid with the
        // predecessor's last restore point.
        var predecessorTxid = lastTxid
        if reason == .restored, let restored {
            predecessor = restored.generation
            predecessorTxid = restored.txid
        }
        // A start that fails before the generation exists (a database SQLite cannot read yet,
        // retried every few seconds) uses no txid.
        let txidBefore = lastTxid
        var started = false
        defer { if !started { lastTxid = txidBefore } }
        if predecessor != nil || lastTxid > 0 { lastTxid += 1 }
        let cursor = try openFollowerAtPublishedEnd()
        let startedMs = max(now(), lastCommitMs)
        let generation = GenerationID.make(milliseconds: startedMs)
        let newState = ReplicaState(
            generation: generation, reason: reason.rawValue, baseTxid: lastTxid, baseCursor: cursor,
            predecessorGeneration: predecessor, predecessorTxid: predecessorTxid, startedMs: startedMs,
            databaseIdentity: FileIdentity(path: databasePath), replica: replicaLocation,
            databaseID: databaseID)
        try newState.save(to: statePath)
        started = true
        state = newState
        // The link is in the state (and the snapshot): the marker has done its work.
        if reason == .restored { restored = nil }
        progress.generation = generation
        table?.close()
        table = try PageHashTable.startPartial(
            directory: pagesDirectory, generation: generation, txid: lastTxid, pageSize: cursor.pageSize, pageCount: 0)
        // Its first snapshot (asked for below) completes the table.
        progress.wantsPageHashes = generation
        builder = try SegmentBuilder(directory: spool.directory, pageSize: cursor.pageSize)
        previousSegment = (lastTxid, [])
        progress.sealedThrough = lastTxid
        // Known again at the first seal, once the snapshot has completed the page hashes.
        sealedFrame = nil
        generationsStarted += 1
        metrics.record { values in
            values.generation = generation
            values.generationStartedMs = startedMs
            values.generationsStarted[reason, default: 0] += 1
        }
        snapshots.reset(generation: generation, hasSnapshot: false, lastTakenMs: nil, lastTxid: nil)
        let level: Logger.Level = reason == .firstStart ? .info : .warning
        logger.log(
            level: level, "new generation",
            metadata: [
                "db.path": "\(databasePath)", "generation": "\(generation)",
                "generation.reason": "\(reason.description)",
                "detail": "\(why)", "txid": "\(lastTxid)",
            ])
        askForSnapshot()
    }

    /// Opens a new follower positioned at the end of what SQLite has published (the snapshot
    /// gate opens again once it holds its connections); returns its cursor.
    private func openFollowerAtPublishedEnd() throws -> WALCursor {
        let follower = WALFollower(
            databasePath: databasePath, cursor: .noWAL(pageSize: 4096), lastTxid: lastTxid, lastCommitMs: lastCommitMs,
            logger: logger, progress: progress, checkpointBusyTimeout: settings.checkpointBusyTimeout,
            checkpointRestart: settings.checkpointRestart, metrics: metrics, now: now)
        try follower.open()
        self.follower = follower
        snapshotGate.open()
        progress.doing(.positioning)
        var positioned = false
        for _ in 0..<1000 where !positioned {
            positioned = follower.positionAtPublishedEnd()
            if !positioned { OnlineBackup.sleep(.milliseconds(2)) }
        }
        guard positioned else {
            throw WalshipError(.databaseUnusable, "could not read a consistent WAL position of '\(databasePath)'")
        }
        var cursor = follower.cursor
        if cursor.pageSize == 0 || cursor == .noWAL(pageSize: cursor.pageSize) {
            cursor.pageSize = follower.databasePageSize
            follower.adopt(cursor)
        }
        return cursor
    }

    func askForSnapshot() {
        guard let state, snapshots.markRequested() else { return }
        requestSnapshot(
            Snapshotter.Request(
                generation: state.generation, reason: ObjectHeader.GenerationReason(rawValue: state.reason) ?? .none,
                predecessorGeneration: state.predecessorGeneration, predecessorTxid: state.predecessorTxid,
                databaseID: databaseID))
    }

    /// Records a finished snapshot in the local state.
    func snapshotFinished(generation: GenerationID, header: ObjectHeader?) {
        snapshots.finished(generation: generation, header: header)
    }

    // MARK: The loop

    /// One iteration: poll, rotate (checkpointing above `wal-max-frames`), cut a segment when
    /// due, start a new generation when the position was lost. Returns whether to poll again at
    /// once (a read that stopped before the published end).
    func iterate() throws -> Bool {
        guard let follower, let builder else { return false }
        if let state, spool.isAbandoned(state.generation) {
            // The uploader found another object under one of this generation's keys: nothing more
            // of it can go into the store.
            try builder.discardAll()
            try startGeneration(
                .objectConflict, "an object of this generation conflicts with one already in the store")
            return false
        }
        try takePageHashOffer()
        var again = false
        fastPoll = false
        progress.doing(.polling)
        var outcome = try follower.poll(into: builder, maxBytes: settings.segmentMaxBytes, catchUp: false)
        if case .raced = outcome {
            if let why = racedTooLong(follower) { outcome = .lost(.walInconsistent, why) }
        } else {
            racing = nil
        }
        switch outcome {
        case .idle, .accepted(_, true):
            syncFromFollower()
            progress.doing(.checkpointing)
            if follower.checkpointIfNeeded(walMaxFrames: settings.walMaxFrames) { fastPoll = true }
            follower.rotate()
        case .accepted(_, false):
            syncFromFollower()
            again = true
        case .raced:
            break
        case .lost(let reason, let why):
            syncFromFollower()
            logger.error(
                "cannot follow the WAL any more; starting a new generation",
                metadata: ["db.path": "\(databasePath)", "detail": "\(why)"])
            try startGeneration(reason, why)
            return false
        }
        progress.doing(.cuttingSegment)
        try cutSegmentIfDue(force: progress.takeCutRequest())
        progress.doing(.checkingDrift)
        if try checkDriftIfDue() { return false }
        progress.doing(.schedulingSnapshot)
        try scheduleSnapshot()
        return again
    }

    /// Notes a poll that raced. Every second of races, a read of SQLite's own mends a wal-index
    /// left inconsistent (it may fail while another process holds the write lock); after
    /// `racingLimit`, the read chain counts as broken: returns why.
    private func racedTooLong(_ follower: WALFollower) -> String? {
        let now = clock.now
        var streak = racing ?? (now, now)
        if now - streak.refreshed > .seconds(1) {
            streak.refreshed = now
            follower.refreshIndex()
        }
        racing = streak
        guard now - streak.since > Self.racingLimit else { return nil }
        racing = nil
        return "every poll of the WAL raced for \(Self.racingLimit) (the last: \(progress.lastRace))"
    }

    /// Cuts the open segment into the spool when it is old or big enough (or `force`).
    func cutSegmentIfDue(force: Bool) throws {
        guard let builder, let state, !builder.isEmpty, let cursor = builder.cursorAfterLast else { return }
        let now = clock.now
        if segmentStarted == nil { segmentStarted = now }
        guard force || builder.size >= settings.segmentMaxBytes || now - segmentStarted! >= settings.syncInterval
        else { return }
        // While a partial page-hash table waits for the snapshot that completes it, segments wait
        // too (up to segment-max-bytes), so that theirs get checksums: they are not restorable
        // before that snapshot anyway. The snapshot asks for the cut once its hashes are offered.
        if !force, builder.size < settings.segmentMaxBytes, table?.isComplete == false, snapshots.isRequested {
            return
        }
        let transactions = builder.transactions
        let first = transactions.first!
        let last = transactions.last!
        let template = ObjectHeader(
            kind: .segment, codec: settings.compression, pageSize: UInt32(builder.pageSize),
            generation: state.generation.value, firstTxid: first.txid, lastTxid: last.txid, firstMs: first.commitMs,
            lastMs: last.commitMs,
            predecessorGeneration: previousSegment.sha.isEmpty ? 0 : state.generation.value,
            predecessorTxid: previousSegment.txid,
            predecessorSHA256: previousSegment.sha.isEmpty ? Array(repeating: 0, count: 32) : previousSegment.sha,
            databasePages: last.databasePages, walSalt1: cursor.salt1, walSalt2: cursor.salt2, walFrame: cursor.frame,
            walChecksum: cursor.checksum)
        var withIdentity = template
        withIdentity.databaseID = databaseID
        let path = spool.temporaryPath("segment")
        let header = try builder.seal(
            to: path, header: withIdentity, table: table, afterTransaction: { try self.completeTableIfDue(at: $0) })
        try table?.journalChanges()
        try spool.add(path)
        try table?.commitChanges()
        previousSegment = (header.lastTxid, header.payloadSHA256)
        sealedFrame = header.walFrame
        progress.sealedThrough = header.lastTxid
        segmentStarted = nil
        restartsAtSeal = follower.map { (ObjectIdentifier($0), $0.restarts) }
    }

    private func scheduleSnapshot() throws {
        guard !snapshots.isRequested else { return }
        if snapshots.isDemanded { askForSnapshot() }
        let (lastMs, lastSnapshotTxid) = snapshots.last
        if let lastMs, let state {
            if state.lastSnapshotMs != lastMs {
                var updated = state
                updated.lastSnapshotMs = lastMs
                updated.lastSnapshotTxid = lastSnapshotTxid
                try updated.save(to: statePath)
                self.state = updated
            }
            let age = Duration.milliseconds(Int64(now()) - Int64(lastMs))
            if age >= settings.snapshotInterval && lastSnapshotTxid != lastTxid { askForSnapshot() }
        } else if !snapshots.hasSnapshot {
            askForSnapshot()
        }
    }

    /// Ends the read chain (a full spool): the application's WAL is then free to reset. After a
    /// full disk the open segment is dropped instead of cut (its file may be short); its
    /// transactions go into the next generation's snapshot.
    func endReadChain(discardingOpenSegment: Bool = false) {
        if discardingOpenSegment {
            try? builder?.discardAll()
        } else {
            try? cutSegmentIfDue(force: true)
        }
        snapshotGate.closeAndWait()
        follower?.close()
        follower = nil
    }

    var isFollowing: Bool { follower != nil }

    /// Cuts the last segment and closes every connection (the `-wal` stays: PERSIST_WAL).
    /// Whether the read chain was running when the loop finished.
    private(set) var wasFollowingAtFinish = true

    func finish() {
        wasFollowingAtFinish = follower != nil
        do {
            try takePageHashOffer()
            try cutSegmentIfDue(force: true)
            try takePageHashOffer()
        } catch {
            logger.error("could not cut the last segment", metadata: ["error": "\(error)"])
        }
        snapshotGate.closeAndWait()
        follower?.close()
        builder?.close()
        follower = nil
        table?.close()
    }

    var currentTxid: UInt64 { lastTxid }
}
