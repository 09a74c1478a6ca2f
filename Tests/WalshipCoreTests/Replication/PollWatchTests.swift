import Logging
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

/// The watchdog over the WAL loop's polls: when it speaks, with no loop and no clock.
@Suite("Poll watch")
struct PollWatchTests {
    static let zero = ContinuousClock.now

    static func at(_ seconds: Int) -> ContinuousClock.Instant { zero + .seconds(seconds) }

    static func sample(
        _ activity: LoopActivity, completed: Int, pollingSince: Int = 0, activitySince: Int = 0
    ) -> PollWatch.Sample {
        PollWatch.Sample(
            activity: activity, activitySince: at(activitySince), pollingSince: at(pollingSince),
            lastCompletedAt: at(completed), pollsStarted: 7, lastCompletedPoll: 5, lastRace: "why")
    }

    @Test("quiet while polls complete, a stall past the threshold is logged once a minute, then its end")
    func stallAndRecovery() {
        var watch = PollWatch(threshold: .seconds(10), repeatEvery: .seconds(60))
        #expect(watch.look(at: Self.sample(.polling, completed: 0), now: Self.at(9)) == .quiet)
        #expect(
            watch.look(at: Self.sample(.pausing, completed: 0), now: Self.at(10)) == .stalled(stalledFor: .seconds(10)))
        #expect(watch.look(at: Self.sample(.polling, completed: 0), now: Self.at(12)) == .quiet)
        #expect(watch.look(at: Self.sample(.polling, completed: 0), now: Self.at(69)) == .quiet)
        #expect(
            watch.look(at: Self.sample(.checkingDrift, completed: 0), now: Self.at(70))
                == .stalled(stalledFor: .seconds(70)))
        #expect(
            watch.look(at: Self.sample(.polling, completed: 71), now: Self.at(72)) == .recovered(after: .seconds(72)))
        #expect(watch.look(at: Self.sample(.polling, completed: 71), now: Self.at(74)) == .quiet)
    }

    @Test("a loop that ended its read chain, waits for SQLite, starts or stops is not stalled")
    func notPolling() {
        for activity in [LoopActivity.waitingForSpool, .waitingForSQLite, .starting, .stopping] {
            var watch = PollWatch()
            #expect(watch.look(at: Self.sample(activity, completed: 0), now: Self.at(300)) == .quiet)
        }
    }

    @Test("the threshold counts from when the loop went back to polling, not from the last poll before")
    func backToPolling() {
        var watch = PollWatch(threshold: .seconds(10))
        #expect(watch.look(at: Self.sample(.polling, completed: 0, pollingSince: 100), now: Self.at(105)) == .quiet)
        #expect(
            watch.look(at: Self.sample(.polling, completed: 0, pollingSince: 100), now: Self.at(110))
                == .stalled(stalledFor: .seconds(110)))
    }

    @Test("the follower's progress records the activity, when polling resumed, and the last race")
    func progressRecords() {
        let progress = FollowerProgress()
        progress.doing(.waitingForSpool)
        let before = ContinuousClock.now
        progress.doing(.polling)
        progress.doing(.pausing)
        progress.raced("the wal-index header's two copies differ")
        let sample = progress.watch
        #expect(sample.activity == .pausing)
        #expect(sample.pollingSince >= before)
        #expect(sample.activitySince >= sample.pollingSince)
        #expect(sample.lastRace == "the wal-index header's two copies differ")
        let number = progress.beginPoll()
        progress.completePoll(number)
        #expect(progress.watch.lastCompletedPoll == number)
        #expect(progress.watch.lastCompletedAt >= sample.activitySince)
    }
    /// The messages a logger was given.
    final class LogLines: LogHandler, @unchecked Sendable {  // `lines` is behind its Mutex.
        let lines = Mutex<[String]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.withLock { $0.append(event.message.description) }
        }
    }

    @Test(
        "on a manual clock, the watchdog says nothing for 8 s of stalled polls, logs the stall at 10 s, and logs the recovery at the next sample after a poll completes"
    )
    func runOnManualClock() async {
        let clock = ManualClock()
        let progress = FollowerProgress(clock: clock)
        progress.doing(.polling)
        let handler = LogLines()
        let logger = Logger(label: "test") { _ in handler }
        let done = StopSignal()
        let watch = Task {
            await PollWatch.run(progress, logger: logger, databasePath: "/db", until: done, clock: clock)
        }
        // Each sample comes 2 s after the last; the watchdog sleeps again once it has looked.
        func sample() async {
            #expect(await clock.waitForSleepers(1))
            clock.advance(by: .seconds(2))
            #expect(await clock.waitForSleepers(1))
        }
        for _ in 0..<4 { await sample() }
        #expect(handler.lines.withLock { $0 }.isEmpty)
        await sample()
        #expect(handler.lines.withLock { $0 } == ["no poll of the WAL has completed for 10 s"])
        progress.completePoll(progress.beginPoll())
        await sample()
        #expect(handler.lines.withLock { $0.last } == "polls of the WAL complete again")
        done.stop()
        clock.advance(by: .seconds(2))
        await watch.value
    }
}
