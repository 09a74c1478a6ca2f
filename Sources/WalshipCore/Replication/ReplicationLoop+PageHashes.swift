import Logging

/// The loop's page-hash table (`PageHashTable`): where it lives, and completing a partial one
/// with the page hashes a snapshot offers.
extension ReplicationLoop {
    /// `<state-dir>/<db>/pages`.
    var pagesDirectory: String { FileSystem.directory(of: statePath) + "/pages" }

    /// Tells the snapshotter to offer its copy's page hashes while the table is partial (and asks
    /// for a snapshot when none is coming).
    func wantPageHashesIfPartial() {
        guard let table, !table.isComplete, let generation = state?.generation else {
            progress.wantsPageHashes = nil
            return
        }
        progress.wantsPageHashes = generation
        if !snapshots.isRequested { askForSnapshot() }
    }

    /// Completes a partial table with a snapshot's copy hashes once the table has reached the
    /// snapshot's `usableTxid` (`txid` is the transaction just applied; called between the
    /// transactions of a seal, and by each iteration with the table's own txid).
    func completeTableIfDue(at txid: UInt64) throws {
        guard let table, !table.isComplete, let offer = pendingPageHashOffer else { return }
        guard offer.generation == state?.generation else {
            try? FileSystem.removeIfPresent(offer.path)
            pendingPageHashOffer = nil
            return
        }
        guard txid >= offer.usableTxid else { return }
        try table.complete(withCopyHashes: offer.path, copyPages: offer.pages)
        try? FileSystem.removeIfPresent(offer.path)
        pendingPageHashOffer = nil
        progress.wantsPageHashes = nil
        logger.info(
            "page hashes complete: restore points from here on carry database checksums",
            metadata: [
                "db.path": "\(databasePath)", "generation": "\(offer.generation)", "txid": "\(txid)",
                "db.pages": "\(table.pageCount)",
            ])
    }

    /// Takes a snapshot's offer of page hashes, and completes the table at once when nothing
    /// waits to be sealed.
    func takePageHashOffer() throws {
        if let offer = progress.takePageHashOffer() {
            if let old = pendingPageHashOffer, old.path != offer.path { try? FileSystem.removeIfPresent(old.path) }
            pendingPageHashOffer = offer
        }
        if let table, builderIsEmpty { try completeTableIfDue(at: table.txid) }
    }
}

/// Continuity by content (issue 15): after a break the WAL cannot bridge (the application's
/// last connection checkpointed and removed it), the database file itself says whether the
/// generation can go on.
extension ReplicationLoop {
    /// Reads the database file once (through SQLite, under the follower's read transaction, and
    /// only when every published WAL frame is in the file) and compares it with the page hashes
    /// of the last shipped state, `resumeTxid`. Equal: the generation continues with no
    /// transaction. Different but a sound database (`PRAGMA quick_check`): the pages that
    /// differ are shipped as one transaction, flagged as read from the database file, so the
    /// changes made while walship was not running (an application's last commits after the
    /// agent stopped, a cron job's sqlite3 session) cost their pages, not a full snapshot.
    /// Anything else is a new generation.
    func continueByContent(resumeTxid: UInt64) throws -> ContinuityDecision.ContentEvidence {
        guard let follower, let table, table.isComplete, table.txid == resumeTxid, let state else { return .unproven }
        let fileBuilder = try SegmentBuilder(directory: spool.directory, pageSize: follower.databasePageSize)
        let started = clock.now
        guard table.pageSize == follower.databasePageSize,
            let scan = try follower.scanDatabaseFile(comparingWith: table, into: fileBuilder)
        else {
            fileBuilder.close()
            return .unproven
        }
        let elapsed = clock.now - started
        var cursor = follower.cursor
        testHooks.afterContentScan?()
        if let pause = settings.pauseAfterContentCheck {
            logger.info("test hook: pausing after the content check's read", metadata: ["db.path": "\(databasePath)"])
            OnlineBackup.sleep(pause)
        }
        guard follower.position(at: scan.index) || (scan.fileOnly && follower.positionAtRestart(after: scan.index))
        else {
            fileBuilder.close()
            return .unproven
        }
        cursor = follower.cursor
        if cursor.pageSize == 0 || cursor == .noWAL(pageSize: cursor.pageSize) {
            cursor.pageSize = follower.databasePageSize
            follower.adopt(cursor)
        }
        let metadata: Logger.Metadata = [
            "db.path": "\(databasePath)", "generation": "\(state.generation)", "txid": "\(resumeTxid)",
            "db.pages": "\(scan.pages)", "check.seconds": "\(ValueParsing.seconds(elapsed))",
            "db.pages_from_wal": "\(scan.pagesFromWAL)",
        ]
        if scan.differingPages == 0 && scan.pages == table.pageCount {
            try fileBuilder.discardPending()
            builder = fileBuilder
            sealedFrame = cursor.frame
            logger.info(
                "continuing generation: the database file is exactly the last shipped state (checked by content)",
                metadata: metadata)
            return .continued
        }
        guard try follower.quickCheck() else {
            fileBuilder.close()
            return .changed(
                "the database file changed while walship was not running and fails PRAGMA quick_check (\(scan.differingPages) pages differ from the last shipped state)"
            )
        }
        lastTxid += 1
        let commitMs = max(now(), lastCommitMs)
        lastCommitMs = commitMs
        try fileBuilder.accept(
            [
                SegmentFormat.Transaction(
                    txid: lastTxid, commitMs: commitMs, databasePages: scan.pages,
                    frameCount: UInt32(scan.differingPages), isLate: true, isFromDatabaseFile: true)
            ], cursor: cursor)
        builder = fileBuilder
        progress.publish(lastTxid: lastTxid)
        follower.resume(lastTxid: lastTxid, lastCommitMs: commitMs)
        shippedTransactions += 1
        try cutSegmentIfDue(force: true)
        var changed = metadata
        changed["db.changed_pages"] = "\(scan.differingPages)"
        logger.warning(
            "continuing generation: pages changed while walship was not running; shipped as one transaction read from the database file",
            metadata: changed)
        return .continued
    }
}

/// Drift detection: a database file changed behind SQLite (overwritten in place, restored with
/// `cp` over a live database) must end the generation instead of being shipped into it.
extension ReplicationLoop {
    /// Bytes of the database file the rolling scan compares per poll interval (a 1 GiB
    /// database is covered in about seven minutes at the default 100 ms poll, with or without
    /// writes).
    static let driftScanBytes = 256 << 10

    /// Runs a drift check at most once per poll interval, when everything read is sealed and the
    /// page hashes are complete; on drift, starts a new generation and returns true. `whole`
    /// compares every page at once (`--once`: a cron run is too short for the rolling scan).
    func checkDriftIfDue(whole: Bool = false) throws -> Bool {
        try checkDrift(whole: whole) == true
    }

    /// At a start that continues its generation, before the transactions caught up are shipped:
    /// the whole file compared with the page hashes of the state the generation resumes from
    /// (pages the WAL holds skipped). A file changed while no agent ran (a copy put back between
    /// two cron runs, with the application's WAL still alive) ends the generation here, and the
    /// transactions caught up (frames written over the changed file) are dropped: the new
    /// generation's snapshot holds them. Returns true when it started a new generation. When
    /// the WAL keeps moving so that no check decides, the rolling scan goes on from there.
    func checkDriftAtStart() throws -> Bool {
        guard let follower, table?.isComplete == true else { return false }
        restartsAtSeal = (ObjectIdentifier(follower), follower.restarts)
        for _ in 0..<20 {
            switch try checkDrift(whole: true, dropUnsealed: true) {
            case .some(let drift):
                checkedWholeFileAtStart = true
                return drift
            case .none:
                OnlineBackup.sleep(.milliseconds(5))
            }
        }
        return false
    }

    /// The drift check: true when it found drift (and started a new generation), false when the
    /// file holds the shipped state, nil when it was not due or could not decide. `dropUnsealed`
    /// (at a start) drops what was read but not sealed before the new generation starts.
    func checkDrift(whole: Bool, dropUnsealed: Bool = false) throws -> Bool? {
        guard let follower, let table, table.isComplete else { return nil }
        // Transactions read but not yet sealed into a segment are fine as long as they all come
        // from the current WAL (their pages are skipped); across a WAL restart they are not.
        let unsealed = !builderIsEmpty || table.txid != lastTxid
        let restarts = (ObjectIdentifier(follower), follower.restarts)
        // Nothing unsealed: the table holds everything read, up to the cursor (which may be in
        // a WAL that restarted since the last seal; the sealed frame then named the old one).
        if !unsealed {
            restartsAtSeal = restarts
            sealedFrame = follower.cursor.frame
        }
        if unsealed && (restartsAtSeal.map { $0 != restarts } ?? true) { return nil }
        let now = clock.now
        if !whole, let last = lastDriftCheck, now - last < settings.walPollInterval { return false }
        // The scan keeps its rate per poll interval when checks are further apart (under steady
        // writes a check runs only once the open segment is cut, every sync interval).
        let intervals = lastDriftCheck.map { (now - $0) / settings.walPollInterval } ?? 1
        lastDriftCheck = now
        var scanFrom = whole ? 2 : driftScanFrom
        let budget = whole ? Int.max : Self.driftScanBytes * Int(min(256, max(1, intervals)))
        let result = try follower.checkDrift(
            table: table, scanFrom: &scanFrom, budgetBytes: budget, unsealed: unsealed,
            // Only at a start is the frame the table holds known exactly (the resume position);
            // while running, every page the WAL holds is skipped when frames are unread or
            // unsealed (a run of the random-points restore test drew false drift otherwise).
            shippedFrame: dropUnsealed ? sealedFrame : nil)
        if !whole && result != .inconclusive { driftScanFrom = scanFrom }
        if result == .inconclusive { return nil }
        guard case .drift(let why) = result else { return false }
        logger.error(
            "the database file changed behind SQLite; the generation ends here and a new one starts with a snapshot",
            metadata: ["db.path": "\(databasePath)", "detail": "\(why)"])
        if dropUnsealed {
            builder?.close()
            builder = nil
            lastTxid = table.txid
        }
        try startGeneration(.databaseChanged, why)
        return true
    }
}
