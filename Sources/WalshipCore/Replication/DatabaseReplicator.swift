import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Replicates one database to one replica: `walship replicate`. Holds the database's lock in
/// the state directory, lists the replica once, continues or starts a generation, then runs the
/// WAL loop on its own thread, snapshots on another, and uploads from the spool, until stopped
/// (or, with `once`, until everything committed so far, and a snapshot if the generation has
/// none, is in the store).
public final class DatabaseReplicator: Sendable {
    /// What a run did.
    public struct Report: Sendable {
        public var transactionsShipped: Int
        public var generationsStarted: Int
        /// Objects still waiting in the spool at exit (0 means everything committed was shipped).
        public var pendingObjects: Int
        public var lastTxid: UInt64
        public var generation: GenerationID?
        /// The newest snapshot this run took.
        public var lastSnapshot: ObjectHeader?
        /// False when the run stopped before its generation's first snapshot was taken: the
        /// commits shipped in that generation are not restorable until a later run snapshots.
        public var generationHasSnapshot: Bool
        /// True when the run stopped while its read chain was ended (no space for the spool, a
        /// full spool, a database SQLite could not read): commits since then are not shipped.
        public var stoppedWhilePaused: Bool

        /// A run stopped before it started (while it waited for the database or the replica lock).
        static let notStarted = Report(
            transactionsShipped: 0, generationsStarted: 0, pendingObjects: 0, lastTxid: 0, generation: nil,
            lastSnapshot: nil, generationHasSnapshot: true, stoppedWhilePaused: false)
    }

    public let databasePath: String
    public let replica: Replica
    public let stateDirectory: String
    public let settings: ReplicationSettings
    let logger: Logger
    /// Where the commit clock reads time (tests substitute their own).
    let clockSources: CommitClock.Sources
    /// The clock that deadlines, waits and the WAL loop's timings are measured and slept on.
    let clock: any MonotonicClock
    /// Tests only: code the WAL loop runs in the windows tests must hit exactly.
    let testHooks: ReplicationLoop.TestHooks

    /// The database's own state directory: it holds the lock every agent for the database
    /// takes, and the state directories of its other replicas (`stateDirectory` is this one, or
    /// `<databaseDirectory>/replicas/<bucket>` for a database with several buckets).
    public let databaseDirectory: String
    /// What this replicator exports at `/metrics`.
    public let metrics = ReplicationMetrics()
    /// Where `walship snapshot` reaches this replicator's run (through `ControlService`'s socket).
    public let control = ControlEndpoint()

    public convenience init(
        databasePath: String, replica: Replica, stateDirectory: String, databaseDirectory: String? = nil,
        settings: ReplicationSettings, logger: Logger, clockSources: CommitClock.Sources = .system,
        clock: any MonotonicClock = ContinuousClock()
    ) {
        self.init(
            databasePath: databasePath, replica: replica, stateDirectory: stateDirectory,
            databaseDirectory: databaseDirectory, settings: settings, logger: logger, clockSources: clockSources,
            clock: clock, testHooks: .init())
    }

    init(
        databasePath: String, replica: Replica, stateDirectory: String, databaseDirectory: String? = nil,
        settings: ReplicationSettings, logger: Logger, clockSources: CommitClock.Sources = .system,
        clock: any MonotonicClock = ContinuousClock(), testHooks: ReplicationLoop.TestHooks
    ) {
        self.clock = clock
        self.databasePath = FileSystem.absolute(databasePath)
        self.replica = replica
        self.stateDirectory = stateDirectory
        self.databaseDirectory = databaseDirectory ?? stateDirectory
        self.settings = settings
        self.logger = logger
        self.clockSources = clockSources
        self.testHooks = testHooks
    }

    /// Runs until `stop` (or, with `once`, until everything is shipped). `snapshotNow` asks for
    /// a snapshot at once, whatever the interval says (`walship snapshot` with no agent running).
    public func run(once: Bool, snapshotNow: Bool = false, stop: StopSignal) async throws -> Report {
        control.begin()
        defer { control.end() }
        try FileSystem.createDirectories(stateDirectory, mode: 0o700)
        let lock = try DatabaseLock.acquire(directory: databaseDirectory, databasePath: databasePath)
        defer { lock.release() }
        // A sidecar may start before its application has created the database: wait for it
        // (with --exec also for WAL mode, which the application sets). A cron run does not wait.
        if settings.waitForDatabase || (!once && !FileSystem.exists(databasePath)),
            !(await waitForDatabase(stop: stop))
        {
            return .notStarted
        }
        try checkDatabase()
        let replicaLock = settings.replicaLock ? try await acquireReplicaLock(once: once, stop: stop) : nil
        if settings.replicaLock && replicaLock == nil { return .notStarted }
        defer { replicaLock?.release() }
        try ReplicaStateDirectory.adopt(
            into: stateDirectory, databaseDirectory: databaseDirectory, replica: replica.location, logger: logger)
        let spool = try Spool(directory: stateDirectory + "/spool", maxBytes: settings.spoolMaxBytes)
        metrics.attach(spool)
        let uploadLog = UploadLogFile(path: stateDirectory + "/uploads.json")
        let uploader = Uploader(
            store: replica.store, layout: replica.layout, spool: spool, logger: logger, metrics: metrics,
            uploadLog: uploadLog, clock: clock)
        _ = await uploadLog.abortLeftovers(in: replica.store, logger: logger)

        let saved = ReplicaState.load(from: stateDirectory + "/state.json")
        try await uploadLeftovers(spool: spool, uploader: uploader, saved: saved, stop: stop)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        metrics.attach(inventory, layout: replica.layout)
        let restored =
            RestoredMarker.load(from: stateDirectory, replica: replica.location)
            ?? RestoredMarker.load(from: databaseDirectory, replica: replica.location)
        let identity = try await checkIdentity(inventory: inventory, restored: restored)
        let spooled = spool.pending.compactMap { try? ObjectFile.readHeader(path: $0.path, key: $0.path) }
        let newestStored = try await newestSegmentHeader(of: saved, inventory: inventory, spool: spool)

        let now = commitClock(floor: max(inventory.newestMs, spooled.map(\.lastMs).max() ?? 0))
        let (requests, requestContinuation) = AsyncStream.makeStream(of: Snapshotter.Request.self)
        let loop = makeLoop(
            spool: spool, now: now, replicaLock: replicaLock, identity: identity, restored: restored,
            requestSnapshot: { requestContinuation.yield($0) })
        let box = LoopBox(loop)
        // A verify abandoned by a stop may have left its trial restore (a database-sized file).
        try? FileManager.default.removeItem(atPath: stateDirectory + "/verify")
        let retention = once ? nil : retentionTask(inventory: inventory, now: now)
        let verification = once ? nil : verifyTask()
        let start = ReplicationLoop.Start(inventory: inventory, spooled: spooled, newestStoredSegment: newestStored)
        try await startLoop(box, start, once: once, stop: stop)
        metrics.record { $0.started = true }
        if restored != nil && box.loop.restored == nil {
            for directory in [stateDirectory, databaseDirectory] {
                try? FileSystem.removeIfPresent(RestoredMarker.path(in: directory))
            }
        }
        let snapshotter = Snapshotter(
            databasePath: databasePath, progress: loop.progress, spool: spool, codec: settings.compression,
            stepPages: settings.snapshotStepPages, pollInterval: settings.walPollInterval, logger: logger, now: now)
        if snapshotNow { loop.snapshots.demand(atMs: now()) }
        // `walship snapshot` reaches a running agent here, until the final drain has ended.
        if !once { serveControlRequests(box, spool: spool, stop: stop, now: now) }

        try await boundingTheStop(stop) {
            try await self.runTasks(
                box, snapshotter: snapshotter, requests: requests, requestContinuation: requestContinuation,
                uploader: uploader, spool: spool, retention: retention, verification: verification, once: once,
                stop: stop)
            await self.finalDrain(uploader, spool: spool, once: once, stop: stop)
        }
        return Report(
            transactionsShipped: loop.shippedTransactions, generationsStarted: loop.generationsStarted,
            pendingObjects: spool.pending.count, lastTxid: loop.currentTxid, generation: loop.generation,
            lastSnapshot: loop.snapshots.demandOutcome.header,
            generationHasSnapshot: loop.generation == nil || loop.snapshots.hasSnapshot,
            stoppedWhilePaused: !loop.wasFollowingAtFinish)
    }

    /// How long a stop may take in all: reading to the end, a new generation's first snapshot
    /// (at most `shutdown-timeout`), and the final drain (at most `shutdown-timeout`).
    var stopBound: Duration { settings.shutdownTimeout * 2 + .seconds(5) }

    /// Runs `body`; once a stop is requested it has `stopBound` to end. Then the stop becomes
    /// immediate and what is in flight is cancelled (an upload to a store that stopped answering
    /// would otherwise hold the agent for as long as its requests and their retries last): what
    /// is not shipped stays in the spool for the next start.
    private func boundingTheStop(
        _ stop: StopSignal, _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                while !stop.isStopped && !Task.isCancelled { await stop.sleep(for: .seconds(3600)) }
                await stop.sleep(for: self.stopBound, wakingOn: .immediate)
                guard !Task.isCancelled, !stop.isImmediate else { return false }
                self.logger.error(
                    "the stop is taking longer than \(self.stopBound); abandoning the requests in flight (what is not uploaded stays in the spool)",
                    metadata: ["db.path": "\(self.databasePath)"])
                stop.stopNow()
                return false
            }
            while let finished = try await group.next() {
                // The body ended: the watch is no longer needed. The watch gave up: cancel the body.
                group.cancelAll()
                if finished { break }
            }
        }
    }

    /// Commit times: monotonic, anchored to the wall clock, never below `floor` (the replica's
    /// and the spool's newest).
    private func commitClock(floor: UInt64) -> @Sendable () -> UInt64 {
        let clock = CommitClock(persistingTo: stateDirectory + "/clock.json", sources: clockSources, logger: logger)
        metrics.attach(clock)
        clock.raiseFloor(to: floor)
        return { clock.now() }
    }

    private func makeLoop(
        spool: Spool, now: @escaping @Sendable () -> UInt64, replicaLock: ReplicaLock?, identity: DatabaseID,
        restored: RestoredMarker?, requestSnapshot: @escaping @Sendable (Snapshotter.Request) -> Void
    ) -> ReplicationLoop {
        let loop = ReplicationLoop(
            databasePath: databasePath, replicaLocation: replica.location, settings: settings, spool: spool,
            statePath: stateDirectory + "/state.json", logger: logger, metrics: metrics, now: now, clock: clock,
            requestSnapshot: requestSnapshot)
        loop.testHooks = testHooks
        if let replicaLock, replicaLock.isHeld {
            let path = databasePath
            loop.followReplicaLock = { try replicaLock.follow(databasePath: path) }
        }
        loop.databaseID = identity
        loop.restored = restored
        return loop
    }

    /// The agent's three jobs until the WAL loop ends: snapshots (one at a time, on their own
    /// thread), the WAL loop, and uploads while it runs.
    private func runTasks(
        _ box: LoopBox, snapshotter: Snapshotter, requests: AsyncStream<Snapshotter.Request>,
        requestContinuation: AsyncStream<Snapshotter.Request>.Continuation, uploader: Uploader, spool: Spool,
        retention: RetentionTask?, verification: VerifyTask?, once: Bool, stop: StopSignal
    ) async throws {
        let loopDone = StopSignal()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var failedSnapshots = 0
                for await request in requests {
                    do {
                        let header = try await Blocking.run {
                            try snapshotter.take(
                                request, gate: box.loop.snapshotGate,
                                isCancelled: { stop.isImmediate || loopDone.isImmediate })
                        }
                        box.loop.snapshotFinished(generation: request.generation, header: header)
                        if let header { retention?.snapshotTaken(atMs: header.firstMs) }
                    } catch {
                        self.logger.error(
                            "snapshot failed", metadata: ["db.path": "\(self.databasePath)", "error": "\(error)"])
                        box.loop.snapshotFinished(generation: request.generation, header: nil)
                        self.metrics.record { $0.snapshotFailures += 1 }
                        failedSnapshots += 1
                        // A cron run gives up on a full disk, or after three failures, instead of
                        // retrying until someone kills it: the next run tries again.
                        if once && ((error as? WalshipError)?.isDiskFull == true || failedSnapshots >= 3) {
                            stop.stop()
                            throw error
                        }
                        await stop.sleep(for: .seconds(5), on: self.clock)
                        // After a stop the wait above returns at once: the snapshot the stop
                        // waits for is tried again once a second, not in a tight loop.
                        if stop.isStopped { try? await self.clock.sleep(for: .seconds(1)) }
                    }
                }
            }
            // The WAL loop.
            group.addTask {
                defer {
                    loopDone.stop()
                    requestContinuation.finish()
                    spool.wake()
                }
                try await Blocking.run {
                    try self.runLoop(box.loop, spool: spool, once: once, stop: stop, loopDone: loopDone)
                }
            }
            // Retention, while the loop runs.
            if let retention {
                group.addTask { await retention.run(until: loopDone) }
            }
            // The watchdog over the loop's polls (a log line when they stall).
            group.addTask {
                await PollWatch.run(
                    box.loop.progress, logger: self.logger, databasePath: self.databasePath, until: loopDone,
                    clock: self.clock)
            }
            // Scheduled verifies, while the loop runs.
            if let verification {
                group.addTask { await verification.run(until: loopDone) }
            }
            // Uploads, while the loop runs.
            group.addTask {
                while !loopDone.isStopped {
                    _ = await uploader.drain(until: nil, stop: loopDone)
                    if loopDone.isStopped { break }
                    for await _ in spool.signals { break }
                    // A cancelled run (its caller is going away) stops at once: waiting on the
                    // spool and retrying uploads both return immediately in a cancelled task,
                    // and would spin.
                    if Task.isCancelled {
                        stop.stopNow()
                        break
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Objects a previous run left in the spool go up first: they continue its position. They
    /// belong to the replica that run replicated to, never to another one.
    private func uploadLeftovers(spool: Spool, uploader: Uploader, saved: ReplicaState?, stop: StopSignal) async throws
    {
        // A file replica's directory is created at the first start only. Missing after this agent
        // has replicated there, it is most likely an unmounted volume: writing a fresh replica
        // onto the disk beneath would look like backups while they are not where they belong.
        if let store = replica.store as? FileObjectStore, !FileSystem.isDirectory(store.root) {
            if let error = missingReplicaDirectory() { throw error }
            try FileSystem.createDirectories(store.root)
        }
        guard !spool.pending.isEmpty else { return }
        if let previous = saved?.replica, previous != replica.location {
            throw WalshipError(
                .usage,
                "'\(stateDirectory)/spool' holds \(spool.pending.count) objects not yet uploaded to \(previous), not \(replica.location): replicate to \(previous) until they are uploaded, or remove that spool directory to give them up"
            )
        }
        // The metrics show what waits while it drains (the store may still be down).
        let left = spool.pending.compactMap { try? ObjectFile.readHeader(path: $0.path, key: $0.path) }
        metrics.record { values in
            values.observedTxid = left.map(\.lastTxid).max() ?? 0
            values.observedCommitMs = left.map(\.lastMs).max() ?? 0
            values.pendingSinceMs = left.filter { $0.kind == .segment }.map(\.firstMs).min()
        }
        logger.info("uploading objects left in the spool", metadata: ["spool.objects": "\(spool.pending.count)"])
        _ = await uploader.drain(until: clock.now + .seconds(60), stop: stop)
    }

    /// The header of the saved generation's newest segment in the store (one ranged GET): the
    /// WAL position to continue from. An unreadable one ends the generation (the start then
    /// sees it abandoned).
    private func newestSegmentHeader(
        of saved: ReplicaState?, inventory: ReplicaInventory, spool: Spool
    ) async throws -> ObjectHeader? {
        guard let saved, !spool.isAbandoned(saved.generation),
            let entry = inventory.segments(of: saved.generation).max(by: { $0.lastTxid < $1.lastTxid })
        else { return nil }
        do {
            let bytes = try await replica.store.get(entry.key, range: 0..<Int64(ObjectHeader.maximumSize))
            return try ObjectHeader.decode(bytes, key: entry.key)
        } catch let error as WalshipError where error.code == .objectCorrupt || error.code == .objectNotFound {
            logger.error(
                "the newest object of this agent's generation is unreadable; ending the generation",
                metadata: ["object.key": "\(entry.key)", "error": "\(error)"])
            try spool.abandon(saved.generation)
            metrics.record { $0.objectConflicts += 1 }
            return nil
        }
    }

    /// Starts the loop (continue or a new generation). A full disk at start is waited out like
    /// one later on (never an exit: the agent would only be restarted into the same full disk),
    /// without holding the WAL meanwhile; so is a database SQLite reports malformed (with
    /// --once: exit 3).
    private func startLoop(_ box: LoopBox, _ start: ReplicationLoop.Start, once: Bool, stop: StopSignal) async throws {
        var reportedMalformed = false
        while true {
            let waitingOn: WalshipError
            do {
                try await Blocking.run { try box.loop.start(start) }
                return
            } catch let error as WalshipError where error.isDiskFull && !stop.isStopped {
                // A cron run does not wait: it would hold the database's lock, and every later
                // run would exit 3 until space returned. The next run tries again.
                if once { throw error }
                waitingOn = error
                box.loop.endReadChain(discardingOpenSegment: true)
                metrics.record { $0.spoolFullEvents += 1 }
                logger.error(
                    "no space left for the state directory at start; waiting for space",
                    metadata: ["db.path": "\(databasePath)", "state.path": "\(stateDirectory)", "error": "\(error)"])
            } catch let error as WalshipError where error.isMalformedDatabase && !once && !stop.isStopped {
                waitingOn = error
                box.loop.endReadChain(discardingOpenSegment: true)
                if !reportedMalformed {
                    logger.error(
                        "SQLite reports the database malformed at start: nothing ships until it reads it again (the agent retries every 5 s)",
                        metadata: ["db.path": "\(databasePath)", "error": "\(error)"])
                    reportedMalformed = true
                }
            }
            await stop.sleep(for: .seconds(5))
            if stop.isStopped {
                guard waitingOn.isDiskFull else { throw waitingOn }
                // Like a stop while replication is paused: nothing is lost, but commits wait.
                throw WalshipError(
                    .storeUnavailable,
                    "stopped while waiting for space on the state directory's file system: commits made since then are not shipped until the next start",
                    cause: waitingOn)
            }
        }
    }

    /// Answers the control socket's requests from now on (`walship snapshot`).
    private func serveControlRequests(
        _ box: LoopBox, spool: Spool, stop: StopSignal, now: @escaping @Sendable () -> UInt64
    ) {
        control.serve { request in
            guard request == "snapshot" else { return "error unknown request '\(request)'" }
            return self.answerSnapshotRequest(book: box.loop.snapshots, spool: spool, stop: stop, now: now)
        }
    }

    /// Ships what is committed, for at most shutdown-timeout. --once uploads for as long as it
    /// takes (it is the job) while the store makes progress, and gives up once every attempt
    /// has failed for shutdown-timeout.
    private func finalDrain(_ uploader: Uploader, spool: Spool, once: Bool, stop: StopSignal) async {
        let deadline = once ? nil : clock.now + settings.shutdownTimeout
        let drained =
            stop.isImmediate
            ? false
            : await uploader.drain(
                until: deadline, giveUpFailingFor: once ? settings.shutdownTimeout : nil, stop: stop,
                level: .immediate)
        if !drained {
            logger.error(
                "stopped with objects not uploaded; they stay in the spool for the next run",
                metadata: ["spool.objects": "\(spool.pending.count)", "spool.bytes": "\(spool.bytes)"])
        }
    }

    /// This database's identity (`DatabaseID`: from its path, or the one it was restored with),
    /// after checking that the replica's newest generation has the same one: a replica that
    /// belongs to another database is never written into (exit 14). Objects of format version 1
    /// carry no identity and pass.
    private func checkIdentity(inventory: ReplicaInventory, restored: RestoredMarker?) async throws -> DatabaseID {
        // A restored database takes on the identity it came from, and keeps it in its state.
        let saved = ReplicaState.load(from: stateDirectory + "/state.json").flatMap {
            $0.replica == replica.location ? $0.databaseID : nil
        }
        let identity =
            restored?.databaseID.flatMap { $0.isKnown ? $0 : nil } ?? saved
            ?? DatabaseID.forDatabase(atPath: databasePath)
        guard let newest = inventory.generations.last else { return identity }
        let key =
            inventory.segments(of: newest).max(by: { $0.lastTxid < $1.lastTxid })?.key
            ?? inventory.snapshots(of: newest).max(by: { $0.takenMs < $1.takenMs })?.key
        guard let key else { return identity }
        let bytes: [UInt8]
        do {
            bytes = try await replica.store.get(key, range: 0..<Int64(ObjectHeader.maximumSize))
        } catch let error as WalshipError where error.code == .objectNotFound {
            return identity
        }
        guard let owner = try? ObjectHeader.decode(bytes, key: key).databaseID, owner.isKnown, owner != identity
        else { return identity }
        throw WalshipError(
            .replicaOfAnotherDatabase,
            "replica '\(replica.location)' belongs to another database: its newest generation \(newest) was replicated from a database with identity \(owner), and '\(databasePath)' has identity \(identity) (identities come from the database's path). Replicate this database to its own prefix; if it was restored from this replica, restore it with the same --state-dir (or --config) as the agent uses, which records where it came from"
        )
    }

    /// The error for a file replica whose directory is missing although this replicator's state
    /// says it replicated there; nil otherwise. `walship replicate --config` asks every
    /// replicator before any starts: one starting fresh must not recreate a directory another
    /// expects (the disk beneath an unmounted volume).
    public func missingReplicaDirectory() -> WalshipError? {
        guard let store = replica.store as? FileObjectStore, !FileSystem.isDirectory(store.root),
            let saved = ReplicaState.load(from: stateDirectory + "/state.json"),
            saved.replica == nil || saved.replica == replica.location
        else { return nil }
        return WalshipError(
            .bucketNotFound,
            "replica directory '\(store.root)' does not exist, but this agent has replicated generation \(saved.generation) of '\(databasePath)' to it: is its volume mounted? To start over there, remove '\(stateDirectory)'"
        )
    }

    /// Asks for a snapshot and waits until one taken after the request is uploaded.
    private func answerSnapshotRequest(
        book: SnapshotBook, spool: Spool, stop: StopSignal, now: @Sendable () -> UInt64
    ) -> String {
        // A stopping agent takes no snapshot on request (it would only lengthen the stop).
        if stop.isStopped { return "unavailable the agent is stopping" }
        let since = now()
        let failuresBefore = book.demandOutcome.failures
        book.demand(atMs: since)
        logger.info("snapshot requested through the control socket", metadata: ["db.path": "\(databasePath)"])
        var header: ObjectHeader
        while true {
            if stop.isStopped { return "unavailable the agent is stopping" }
            let outcome = book.demandOutcome
            if let taken = outcome.header, taken.firstMs >= since {
                header = taken
                break
            }
            if outcome.failures > failuresBefore { return "error the snapshot failed; see the agent's log" }
            OnlineBackup.sleep(.milliseconds(50))
        }
        func isPending() -> Bool {
            spool.pending.contains { item in
                guard let pending = try? ObjectFile.readHeader(path: item.path, key: item.path) else { return false }
                return pending.kind == .snapshot && pending.generation == header.generation
                    && pending.lastTxid == header.lastTxid && pending.firstMs == header.firstMs
            }
        }
        while isPending() {
            if stop.isImmediate { return "error the agent stopped before the snapshot was uploaded" }
            OnlineBackup.sleep(.milliseconds(50))
        }
        return
            "ok generation=\(GenerationID(header.generation)) txid=\(header.lastTxid) taken_at=\(Timestamp.format(milliseconds: header.firstMs)) bytes=\(header.payloadSize)"
    }

    /// What the WAL loop carries from one iteration to the next.
    private struct LoopProgress {
        /// When a stop gives up waiting for the new generation's first snapshot.
        var snapshotDeadline: ContinuousClock.Instant?
        /// A graceful stop has read the WAL to its published end.
        var readToTheEnd = false
        /// The read chain ended because the spool's disk filled.
        var diskFull = false
        /// Set while SQLite reports the database malformed (a file changed behind it, e.g. an
        /// older, larger copy put back in place while its wal-index still holds the old size):
        /// when to try again to start a generation.
        var malformedRetry: ContinuousClock.Instant?
        /// `--once` compared the whole file with the page hashes before exiting (or gave up).
        var wholeDriftChecked = false
        var wholeDriftAttempts = 0
    }

    /// The WAL loop on its thread: poll every `wal-poll-interval`; on a full spool end the read
    /// chain until the store catches up, then start a new generation.
    private func runLoop(
        _ loop: ReplicationLoop, spool: Spool, once: Bool, stop: StopSignal, loopDone: StopSignal
    ) throws {
        defer { loop.finish() }
        var progress = LoopProgress()
        while true {
            if stop.isStopped, try stopsNow(loop, &progress, stop: stop, loopDone: loopDone) { break }
            let started = clock.now
            if once && !loop.snapshots.isRequested && loop.snapshots.hasSnapshot && !loop.snapshots.isDemanded {
                // Before it exits, a cron run compares the whole file with its page hashes once:
                // a copy put back in place between runs starts a new generation (with its
                // snapshot, so the loop goes on).
                // Under steady writes a check may not decide: it reads on and tries again, for
                // at most 100 polls.
                guard !progress.wholeDriftChecked && !loop.checkedWholeFileAtStart else { return }
                try loop.cutSegmentIfDue(force: true)
                progress.wholeDriftAttempts += 1
                if try loop.checkDrift(whole: true) != nil {
                    progress.wholeDriftChecked = true
                    continue
                }
                if progress.wholeDriftAttempts >= 100 {
                    progress.wholeDriftChecked = true
                    logger.warning(
                        "could not compare the database file with the shipped state before exiting (the WAL kept moving); the next run tries again",
                        metadata: ["db.path": "\(databasePath)"])
                    continue
                }
                // Not decided: read on (the check runs again after the next poll).
            }
            if once && loop.snapshots.isDemanded && loop.snapshots.demandOutcome.failures > 0 {
                throw WalshipError(.internal, "the snapshot of '\(databasePath)' failed (see the log above)")
            }
            guard let again = try step(loop, spool: spool, &progress, once: once, stop: stop) else { continue }
            if spool.isFull && loop.isFollowing {
                logger.error(
                    "spool full: ending the read chain until the store recovers; a new generation follows",
                    metadata: ["spool.bytes": "\(spool.bytes)", "spool.max_bytes": "\(spool.maxBytes)"])
                loop.endReadChain()
                metrics.record { $0.spoolFullEvents += 1 }
            }
            if !again {
                let interval =
                    loop.fastPoll ? min(settings.walPollInterval, .milliseconds(2)) : settings.walPollInterval
                let elapsed = clock.now - started
                if elapsed < interval { loop.pause(interval - elapsed) }
            }
        }
    }

    /// After a stop request: whether the loop ends now. A graceful stop first reads what was
    /// published before it (a commit made just before SIGTERM is shipped, not left for a next
    /// start that may never come), and lets a new generation's first snapshot finish, for at most
    /// shutdown-timeout: a generation without it has no restore point at all.
    private func stopsNow(
        _ loop: ReplicationLoop, _ progress: inout LoopProgress, stop: StopSignal, loopDone: StopSignal
    ) throws -> Bool {
        loop.progress.doing(.stopping)
        if !progress.readToTheEnd && loop.isFollowing && !stop.isImmediate {
            progress.readToTheEnd = true
            var reads = 0
            while try loop.iterate(), !stop.isImmediate, reads < 1000 { reads += 1 }
        }
        guard !stop.isImmediate, loop.isFollowing, loop.generation != nil, !loop.snapshots.hasSnapshot else {
            return true
        }
        let deadline = progress.snapshotDeadline ?? clock.now + settings.shutdownTimeout
        if progress.snapshotDeadline == nil {
            progress.snapshotDeadline = deadline
            logger.info(
                "stopping once the new generation's first snapshot is taken", metadata: ["db.path": "\(databasePath)"])
        }
        guard clock.now > deadline else { return false }
        // Give up: cancel the snapshot (the report then says the generation has none).
        loopDone.stopNow()
        return true
    }

    /// One iteration: read the WAL (after restarting the read chain when it was ended), or wait
    /// out a full disk or a malformed database. Whether there is more to read at once, or nil
    /// when the loop should go round again without pausing.
    private func step(
        _ loop: ReplicationLoop, spool: Spool, _ progress: inout LoopProgress, once: Bool, stop: StopSignal
    ) throws -> Bool? {
        do {
            if let retry = progress.malformedRetry {
                loop.progress.doing(.waitingForSQLite)
                guard clock.now >= retry else {
                    OnlineBackup.sleep(settings.walPollInterval)
                    return nil
                }
                progress.malformedRetry = clock.now + .seconds(5)
                try loop.startGeneration(.databaseChanged, "SQLite reads the database again")
                progress.malformedRetry = nil
                logger.info("the database is readable again", metadata: ["db.path": "\(databasePath)"])
            }
            if !loop.isFollowing {
                loop.progress.doing(.waitingForSpool)
                guard try resumeAfterFullSpool(loop, spool: spool, diskFull: progress.diskFull) else {
                    OnlineBackup.sleep(settings.walPollInterval)
                    return nil
                }
                progress.diskFull = false
            }
            return try loop.iterate()
        } catch let error as WalshipError where error.isDiskFull {
            // No space for the spool is a full spool: let go of the WAL (the application must
            // never wait for walship's disk), and start a new generation once space returns.
            logger.error(
                "no space left for the spool: ending the read chain until space returns; a new generation follows",
                metadata: ["db.path": "\(databasePath)", "spool.path": "\(spool.directory)", "error": "\(error)"])
            loop.endReadChain(discardingOpenSegment: true)
            metrics.record { $0.spoolFullEvents += 1 }
            progress.diskFull = true
            return nil
        } catch let error as WalshipError where error.isMalformedDatabase && !once && !stop.isStopped {
            // Never an exit: a supervisor would restart the agent into the same file (and with
            // --exec the application with it). Nothing can ship from a database SQLite cannot
            // read; once it can again, a new generation starts with a snapshot.
            if progress.malformedRetry == nil {
                logger.error(
                    "SQLite reports the database malformed: nothing ships until it reads it again (the agent retries every 5 s; a new generation then starts)",
                    metadata: ["db.path": "\(databasePath)", "error": "\(error)"])
                loop.endReadChain()
            }
            progress.malformedRetry = clock.now + .seconds(5)
            return nil
        }
    }

    /// Whether the read chain, ended by a full spool or a full disk, can start again (it then has
    /// started a new generation): the spool is below half its limit, and after a full disk the
    /// spool's file system has room for a snapshot's copy of the database and a full segment.
    private func resumeAfterFullSpool(_ loop: ReplicationLoop, spool: Spool, diskFull: Bool) throws -> Bool {
        guard spool.bytes < spool.maxBytes / 2 else { return false }
        if diskFull {
            // Room for the snapshot: its copy of the database and the compressed object beside it
            // (at worst as large), and a few segments (two of the largest would ask more than many
            // small file systems have at all).
            func needed(_ database: Int64) -> Int64 {
                2 * database + min(2 * settings.segmentMaxBytes, max(1 << 20, database / 4))
            }
            let fileBytes = FileSystem.size(databasePath) ?? 0
            guard let available = FileSystem.availableBytes(spool.directory), available >= needed(fileBytes),
                available >= needed(max(fileBytes, logicalDatabaseBytes()))
            else { return false }
            try loop.startGeneration(.spoolFull, "space returned on the spool's file system")
        } else {
            try loop.startGeneration(.spoolFull, "the spool drained after a store outage")
        }
        return true
    }

    /// The agent's scheduled verify (none while `verify-interval` is off).
    private func verifyTask() -> VerifyTask? {
        settings.verifyInterval.map { interval in
            VerifyTask(
                replica: replica, interval: interval, maxBytes: settings.verifyMaxBytes,
                directory: stateDirectory + "/verify", logger: logger, metrics: metrics)
        }
    }

    /// The agent's retention (none with `retention: none`), scheduled from the start LIST. A
    /// snapshot interval longer than the retention leaves at most one snapshot in the window.
    private func retentionTask(inventory: ReplicaInventory, now: @escaping @Sendable () -> UInt64) -> RetentionTask? {
        guard let retention = settings.retention else { return nil }
        if settings.snapshotInterval > retention {
            logger.warning(
                "snapshot-interval is longer than retention: the restore window then holds at most one snapshot, and restores from its start replay up to a whole snapshot interval of segments",
                metadata: [
                    "replica": "\(replica.location)", "snapshot_interval": "\(settings.snapshotInterval)",
                    "retention": "\(retention)",
                ])
        }
        let task = RetentionTask(
            replica: replica, policy: RetentionPolicy(retention: retention, grace: settings.retentionGrace),
            logger: logger, metrics: metrics, now: now)
        task.schedule(from: inventory)
        return task
    }

    /// Takes the replica lock, waiting (with a warning) while another agent holds it; nil when a
    /// stop came first. `--once` does not wait: exit 3, as for the state directory's lock.
    private func acquireReplicaLock(once: Bool, stop: StopSignal) async throws -> ReplicaLock? {
        var warned = false
        while true {
            if let lock = try ReplicaLock.tryAcquire(databasePath: databasePath, replicaLocation: replica.identity) {
                if warned {
                    logger.info("the other agent stopped; replicating", metadata: ["db.path": "\(databasePath)"])
                }
                return lock
            }
            if once {
                throw WalshipError(
                    .databaseUnusable,
                    "another walship agent is replicating '\(databasePath)' to \(replica.location) (it holds the replica lock on the database file)"
                )
            }
            if !warned {
                warned = true
                logger.warning(
                    "another walship agent is replicating this database to this replica (a rolling deploy, or a second agent with its own state directory); waiting for it to stop",
                    metadata: ["db.path": "\(databasePath)", "replica": "\(replica.location)"])
            }
            await stop.sleep(for: .seconds(1))
            if stop.isStopped { return nil }
        }
    }

    /// The database's size as SQLite reads it (its WAL included), 0 when it cannot be read.
    private func logicalDatabaseBytes() -> Int64 {
        guard let connection = try? Connection.openObserver(path: databasePath) else { return 0 }
        defer { connection.close() }
        guard let pages = try? connection.scalarInt("PRAGMA page_count"), let pageSize = try? connection.pageSize()
        else { return 0 }
        return pages * Int64(pageSize)
    }

    /// Start-up checks (DESIGN.md section 3): the database exists, this process may write its
    /// directory and `-shm`, and it runs as the database's owner or root.
    /// Waits until the database exists (and, with `waitForDatabase`, is in WAL mode: an
    /// application started by `--exec` creates it); false when a stop came while it still did
    /// not. An application that created it and exited before the agent looked still gets its
    /// commits shipped: the replication then starts already stopped, which ships what is
    /// committed (and the first snapshot).
    private func waitForDatabase(stop: StopSignal) async -> Bool {
        var logged = false
        while true {
            if FileSystem.exists(databasePath) {
                guard settings.waitForDatabase else { return true }
                if let connection = try? Connection.openObserver(path: databasePath) {
                    let mode = try? connection.scalarText("PRAGMA journal_mode")
                    connection.close()
                    if mode == "wal" { return true }
                }
            }
            if stop.isStopped { return false }
            if !logged {
                logger.warning(
                    "waiting for the application to create the database in WAL mode (check the path if this lasts)",
                    metadata: ["db.path": "\(databasePath)"])
                logged = true
            }
            await stop.sleep(for: .milliseconds(250))
        }
    }

    private func checkDatabase() throws {
        guard let info = FileSystem.status(databasePath) else {
            throw WalshipError(.databaseUnusable, "database '\(databasePath)' does not exist")
        }
        let uid = getuid()
        if uid != 0 && uid != info.st_uid {
            throw WalshipError(
                .databaseUnusable,
                "database '\(databasePath)' belongs to uid \(info.st_uid); run walship as that user (or root) so it never creates '-shm' with the wrong owner"
            )
        }
        let directory = FileSystem.directory(of: databasePath)
        guard FileSystem.isWritableDirectory(directory) else {
            throw WalshipError(
                .databaseUnusable, "directory '\(directory)' is not writable: SQLite needs it for '-wal' and '-shm'")
        }
        if FileSystem.exists(databasePath + "-shm") && access(databasePath + "-shm", R_OK | W_OK) != 0 {
            throw WalshipError(.databaseUnusable, "'\(databasePath)-shm' is not readable and writable by this user")
        }
    }
}
