import Synchronization

/// The thread-safe view of a `WALFollower` for the snapshotter: the last published txid, and
/// which polls (reads that reached the published end of the WAL) have completed.
final class FollowerProgress: Sendable {
    private struct State {
        var lastTxid: UInt64 = 0
        var generation: GenerationID?
        var pollsStarted = 0
        var lastCompletedPoll = 0
        var sealedThrough: UInt64 = 0
        var cutRequested = false
        var wantsPageHashes: GenerationID?
        var pageHashOffer: PageHashOffer?
        var lastCompletedAt: ContinuousClock.Instant
        var activity = LoopActivity.starting
        var activitySince: ContinuousClock.Instant
        var pollingSince: ContinuousClock.Instant
        var lastRace = ""
    }

    /// The page hashes of a snapshot's copy, offered to the loop to complete its partial
    /// `PageHashTable` (the file is removed by whoever drops the offer).
    struct PageHashOffer: Sendable {
        var generation: GenerationID
        var fromTxid: UInt64
        var usableTxid: UInt64
        var path: String
        var pages: UInt32
    }

    private let state: Mutex<State>
    /// The clock the watchdog's instants come from.
    let clock: any MonotonicClock

    init(clock: any MonotonicClock = ContinuousClock()) {
        self.clock = clock
        let now = clock.now
        state = Mutex(State(lastCompletedAt: now, activitySince: now, pollingSince: now))
    }

    func publish(lastTxid: UInt64) {
        state.withLock { $0.lastTxid = lastTxid }
    }

    var lastTxid: UInt64 { state.withLock { $0.lastTxid } }

    /// The generation the follower is shipping into.
    var generation: GenerationID? {
        get { state.withLock { $0.generation } }
        set { state.withLock { $0.generation = newValue } }
    }

    /// The last txid sealed into a segment in the spool.
    var sealedThrough: UInt64 {
        get { state.withLock { $0.sealedThrough } }
        set { state.withLock { $0.sealedThrough = newValue } }
    }

    /// The generation whose loop needs a snapshot's page hashes (its table is partial).
    var wantsPageHashes: GenerationID? {
        get { state.withLock { $0.wantsPageHashes } }
        set { state.withLock { $0.wantsPageHashes = newValue } }
    }

    /// Offers a snapshot's page hashes to the loop (replacing, and removing, an older offer).
    func offer(_ offer: PageHashOffer) {
        let replaced = state.withLock { state -> PageHashOffer? in
            defer { state.pageHashOffer = offer }
            return state.pageHashOffer
        }
        if let replaced { try? FileSystem.removeIfPresent(replaced.path) }
    }

    /// Takes the pending offer, if any.
    func takePageHashOffer() -> PageHashOffer? {
        state.withLock { state in
            defer { state.pageHashOffer = nil }
            return state.pageHashOffer
        }
    }

    /// Asks the WAL loop to cut the open segment now (a snapshot waits for the segments that
    /// reach its `usableTxid` to be queued before it).
    func requestCut() { state.withLock { $0.cutRequested = true } }

    /// Takes a pending cut request.
    func takeCutRequest() -> Bool {
        state.withLock { state in
            defer { state.cutRequested = false }
            return state.cutRequested
        }
    }

    /// Numbers a poll as it starts.
    func beginPoll() -> Int {
        state.withLock { state in
            state.pollsStarted += 1
            return state.pollsStarted
        }
    }

    /// Records that poll `number` read everything published.
    func completePoll(_ number: Int) {
        state.withLock {
            $0.lastCompletedPoll = max($0.lastCompletedPoll, number)
            $0.lastCompletedAt = clock.now
        }
    }

    /// Records what the WAL loop is doing (for `PollWatch`).
    func doing(_ activity: LoopActivity) {
        state.withLock { state in
            guard state.activity != activity else { return }
            if activity.expectsPolls && !state.activity.expectsPolls { state.pollingSince = clock.now }
            state.activity = activity
            state.activitySince = clock.now
        }
    }

    /// Records why the last poll raced.
    func raced(_ why: String) { state.withLock { $0.lastRace = why } }

    /// Why the last poll raced, for the log when polls keep racing.
    var lastRace: String { state.withLock { $0.lastRace } }

    /// What the WAL loop is doing and how its polls go, for the watchdog.
    var watch: PollWatch.Sample {
        state.withLock {
            PollWatch.Sample(
                activity: $0.activity, activitySince: $0.activitySince, pollingSince: $0.pollingSince,
                lastCompletedAt: $0.lastCompletedAt,
                pollsStarted: $0.pollsStarted, lastCompletedPoll: $0.lastCompletedPoll, lastRace: $0.lastRace)
        }
    }

    /// The number the next poll will get: a poll numbered at least this starts after now.
    var nextPoll: Int { state.withLock { $0.pollsStarted + 1 } }

    /// The last txid, if a poll numbered at least `number` has completed.
    func lastTxid(afterPoll number: Int) -> UInt64? {
        state.withLock { $0.lastCompletedPoll >= number ? $0.lastTxid : nil }
    }
}
