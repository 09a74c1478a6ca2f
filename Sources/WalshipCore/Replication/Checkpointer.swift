import Foundation
import Logging
import Synchronization

/// Keeps the WAL bounded (DESIGN.md section 3): when asked, runs a PASSIVE checkpoint and then a
/// RESTART checkpoint with a busy timeout of at most `checkpoint-busy-timeout`, on its own
/// connection and thread, while the WAL follower keeps reading and rotating its read
/// transaction (quickly, while a checkpoint runs). RESTART takes the writer lock, waits for
/// readers to reach the newest snapshot (the follower's rotation gets there), copies every frame
/// and waits until readers read from the database file only, so the next writer restarts the
/// WAL. Without it, the agent's ever-present read transaction keeps the WAL from ever
/// restarting under sustained writes. The time the RESTART holds the lock is measured.
// @unchecked: mutable state is behind `lock`; the connection is used by the checkpoint thread only.
final class Checkpointer: @unchecked Sendable {
    private let databasePath: String
    private let busyTimeout: Duration
    private let restart: Bool
    private let shared: SharedMemoryFile?
    private let logger: Logger
    private let lock = NSCondition()
    private var requested = false
    private var stopping = false
    private var finished = false
    private let running = Atomic<Bool>(false)
    private let metrics: ReplicationMetrics?
    /// The clock that backoffs and the RESTART's lock time are measured on.
    private let clock: any MonotonicClock
    /// After a busy RESTART while another process (the application) holds a read transaction on
    /// the WAL, or behind a reader that has not moved for `heldBeforeBackoff`, requests are
    /// ignored until then:
    /// 250 ms, doubling to 5 s, until the backfill moves or a RESTART succeeds. Back to back,
    /// such RESTARTs would hold the application's writer lock almost all the time. A RESTART
    /// that is busy because writers keep the lock is retried at once (it holds nothing). Under
    /// `lock`.
    private var notBefore: ContinuousClock.Instant?
    /// The current wait (checkpoint thread only).
    private var backoff: Duration = .zero
    /// Where busy RESTARTs have found the backfill held short of the WAL's end, and since when
    /// (checkpoint thread only).
    private var heldSince: (backfill: Int, since: ContinuousClock.Instant)?
    /// How long the backfill must stay held at one frame before the agent waits: its own readers
    /// move every poll interval (every few milliseconds while it checkpoints), so a reader that
    /// holds it longer is the application's.
    static let heldBeforeBackoff: Duration = .seconds(1)
    static let firstBackoff: Duration = .milliseconds(250)
    static let longestBackoff: Duration = .seconds(5)

    init(
        databasePath: String, busyTimeout: Duration, restart: Bool, shared: SharedMemoryFile?,
        metrics: ReplicationMetrics? = nil, clock: any MonotonicClock = ContinuousClock(), logger: Logger
    ) {
        self.clock = clock
        self.metrics = metrics
        self.databasePath = databasePath
        self.busyTimeout = busyTimeout
        self.restart = restart
        self.shared = shared
        self.logger = logger
        let thread = Thread { [self] in self.loop() }
        thread.name = "walship-checkpoint"
        thread.start()
    }

    /// Whether a checkpoint is being run or waits to run.
    var isBusy: Bool { running.load(ordering: .relaxed) }

    /// Asks for one checkpoint; ignored while one is pending or running, and while it waits
    /// after a busy RESTART.
    func request() {
        lock.lock()
        if let notBefore, clock.now < notBefore {
            lock.unlock()
            return
        }
        if !requested && !running.load(ordering: .relaxed) {
            requested = true
            running.store(true, ordering: .relaxed)
            lock.signal()
        }
        lock.unlock()
    }

    /// Stops the thread and closes its connection; returns when both are done.
    func stop() {
        lock.lock()
        stopping = true
        lock.signal()
        while !finished { lock.wait() }
        lock.unlock()
    }

    private func loop() {
        var connection: Connection?
        defer {
            connection?.close()
            lock.lock()
            finished = true
            lock.broadcast()
            lock.unlock()
        }
        while true {
            lock.lock()
            while !requested && !stopping { lock.wait() }
            if stopping {
                lock.unlock()
                return
            }
            requested = false
            lock.unlock()
            // Every replicator of this database in this process rotates quickly meanwhile.
            shared?.checkpointStarted()
            defer { shared?.checkpointEnded() }
            do {
                let current: Connection
                if let connection {
                    current = connection
                } else {
                    current = try Connection.openObserver(path: databasePath, busyTimeoutMilliseconds: 0)
                    // A connection opens the WAL at its first read; before that a checkpoint
                    // reports the database as not in WAL mode and does nothing.
                    _ = try current.checkedJournalMode()
                    _ = try current.scalarInt("SELECT count(*) FROM sqlite_schema")
                    connection = current
                }
                let result = try runCheckpoint(on: current)
                var stuck = false
                if result.busy, let backfill = result.shortBackfill {
                    if let held = heldSince, held.backfill == backfill {
                        stuck = clock.now - held.since >= Self.heldBeforeBackoff
                    } else {
                        heldSince = (backfill, clock.now)
                    }
                    // A read transaction of another process (the application's) uses the WAL:
                    // waiting at once spares the application's writers the next busy RESTARTs,
                    // also while overlapping readers keep moving the backfill.
                    stuck = stuck || shared?.otherProcessReadsWAL(path: databasePath + "-shm") == true
                } else {
                    heldSince = nil
                }
                backoff = stuck ? min(max(backoff * 2, Self.firstBackoff), Self.longestBackoff) : .zero
                if stuck {
                    logger.debug(
                        "restart checkpoint waits for a reader",
                        metadata: [
                            "wal.backfill": "\(result.shortBackfill ?? 0)", "next_in_ms": "\(backoff.milliseconds)",
                        ])
                }
                lock.lock()
                notBefore = stuck ? clock.now + backoff : nil
                lock.unlock()
            } catch {
                logger.debug("checkpoint failed", metadata: ["error": "\(error)"])
            }
            running.store(false, ordering: .relaxed)
        }
    }

    /// Runs PASSIVE, then RESTART: whether the RESTART gave up after its busy timeout, and where
    /// the PASSIVE left the backfill when a reader kept it short of the WAL's end.
    private func runCheckpoint(on connection: Connection) throws -> (busy: Bool, shortBackfill: Int?) {
        try connection.setBusyTimeout(milliseconds: 0)
        var shortBackfill: Int?
        do {
            let passive = try connection.checkpoint(.passive)
            logger.debug(
                "passive checkpoint",
                metadata: ["wal.frames": "\(passive.walFrames)", "wal.checkpointed": "\(passive.checkpointedFrames)"])
            if passive.checkpointedFrames < passive.walFrames { shortBackfill = Int(passive.checkpointedFrames) }
        } catch {
            logger.debug("passive checkpoint failed", metadata: ["error": "\(error)"])
        }
        guard restart else { return (false, shortBackfill) }
        try connection.setBusyTimeout(milliseconds: Int32(max(1, busyTimeout.milliseconds)))
        let started = clock.now
        do {
            _ = try connection.checkpoint(.restart)
            let held = clock.now - started
            logger.debug("restart checkpoint", metadata: ["lock_ms": "\(held.milliseconds)"])
            let seconds = held.seconds
            metrics?.record { values in
                values.checkpointRestarts += 1
                values.writeLockSeconds += seconds
                values.longestWriteLockSeconds = max(values.longestWriteLockSeconds, seconds)
            }
            return (false, shortBackfill)
        } catch let error as SQLiteError where error.isBusy {
            logger.debug("restart checkpoint busy", metadata: ["waited_ms": "\((clock.now - started).milliseconds)"])
            metrics?.record { $0.checkpointBusy += 1 }
            return (true, shortBackfill)
        }
    }
}
