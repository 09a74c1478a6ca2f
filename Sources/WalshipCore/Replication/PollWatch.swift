import Logging

/// What the WAL loop is doing, recorded in `FollowerProgress` for `PollWatch`.
enum LoopActivity: String, Sendable, Equatable {
    case starting = "starting"
    case polling = "reading the WAL"
    case pausing = "pausing between polls"
    case checkpointing = "asking for a checkpoint"
    case cuttingSegment = "cutting a segment"
    case checkingDrift = "comparing the database file with the page hashes"
    case schedulingSnapshot = "scheduling a snapshot"
    case closingSnapshot = "waiting for a running snapshot to close its connection"
    case startingGeneration = "starting a new generation"
    case positioning = "finding a consistent end of the WAL"
    case catchingUp = "catching up with the WAL after a break"
    case waitingForSpool = "waiting for the spool to drain (read chain ended)"
    case waitingForSQLite = "waiting for SQLite to read the database again"
    case stopping = "stopping"

    /// Whether polls are expected to complete while the loop does this: a loop that ended its
    /// read chain, or waits out a malformed database, does not poll.
    var expectsPolls: Bool {
        switch self {
        case .waitingForSpool, .waitingForSQLite, .stopping, .starting: false
        default: true
        }
    }
}

/// A watchdog over the WAL loop: when no poll has read to the published end of the WAL for
/// `threshold` while the loop should be polling, it logs what the loop is doing, for how long, and
/// why the last poll raced, so a stall is explained by the log rather than only seen as lag.
/// (`ReplicationLoop.racingLimit` bounds polls that keep racing; this covers the rest.)
struct PollWatch {
    struct Sample: Sendable {
        var activity: LoopActivity
        var activitySince: ContinuousClock.Instant
        /// Since when the loop has been in activities that expect polls.
        var pollingSince: ContinuousClock.Instant
        var lastCompletedAt: ContinuousClock.Instant
        var pollsStarted: Int
        var lastCompletedPoll: Int
        var lastRace: String
    }

    enum Verdict: Equatable {
        case quiet
        /// Log that polls have stalled (for `stalledFor`).
        case stalled(stalledFor: Duration)
        /// Log that polls complete again after a stall.
        case recovered(after: Duration)
    }

    let threshold: Duration
    let repeatEvery: Duration
    /// Since when polls are stalled (the first sample that saw it), and when it was last logged.
    private(set) var stall: (since: ContinuousClock.Instant, logged: ContinuousClock.Instant)?

    init(threshold: Duration = .seconds(10), repeatEvery: Duration = .seconds(60)) {
        self.threshold = threshold
        self.repeatEvery = repeatEvery
    }

    /// Looks at one sample taken at `now`.
    mutating func look(at sample: Sample, now: ContinuousClock.Instant) -> Verdict {
        let stalled =
            sample.activity.expectsPolls && now - max(sample.lastCompletedAt, sample.pollingSince) >= threshold
        guard stalled else {
            defer { stall = nil }
            if let stall { return .recovered(after: now - stall.since) }
            return .quiet
        }
        let since = stall?.since ?? sample.lastCompletedAt
        if let logged = stall?.logged, now - logged < repeatEvery { return .quiet }
        stall = (since, now)
        return .stalled(stalledFor: now - sample.lastCompletedAt)
    }

    /// Samples `progress` every `interval` until `done`, logging what `look` decides.
    static func run(
        _ progress: FollowerProgress, logger: Logger, databasePath: String, until done: StopSignal,
        interval: Duration = .seconds(2), clock: any MonotonicClock = ContinuousClock()
    ) async {
        var watch = PollWatch()
        while !done.isStopped {
            await done.sleep(for: interval, on: clock)
            if done.isStopped { return }
            let sample = progress.watch
            let now = clock.now
            switch watch.look(at: sample, now: now) {
            case .quiet:
                break
            case .stalled(let stalledFor):
                logger.warning(
                    "no poll of the WAL has completed for \(Int(stalledFor.seconds)) s",
                    metadata: [
                        "db.path": "\(databasePath)", "loop.activity": "\(sample.activity.rawValue)",
                        "loop.activity_s": "\(Int((now - sample.activitySince).seconds))",
                        "polls.started": "\(sample.pollsStarted)", "polls.completed": "\(sample.lastCompletedPoll)",
                        "last_race": "\(sample.lastRace)",
                    ])
            case .recovered(let after):
                logger.info(
                    "polls of the WAL complete again",
                    metadata: ["db.path": "\(databasePath)", "stall_s": "\(Int(after.seconds))"])
            }
        }
    }
}
