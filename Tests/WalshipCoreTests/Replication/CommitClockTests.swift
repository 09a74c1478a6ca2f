import Foundation
import Logging
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Commit clock")
struct CommitClockTests {
    /// A wall clock, a monotonic clock and a boot id the test moves by hand.
    final class FakeTime: Sendable {
        private let state = Mutex<(wallMs: Int64, monotonicMs: UInt64, boot: String)>((1_800_000_000_000, 5_000, "a"))

        var sources: CommitClock.Sources {
            CommitClock.Sources(
                wallNanoseconds: { self.state.withLock { $0.wallMs * 1_000_000 } },
                monotonicNanoseconds: { self.state.withLock { $0.monotonicMs * 1_000_000 } },
                bootID: { self.state.withLock { $0.boot } })
        }

        /// Time passes: both clocks advance.
        func pass(_ ms: Int64) {
            state.withLock {
                $0.wallMs += ms; $0.monotonicMs += UInt64(ms)
            }
        }
        /// The wall clock alone is set (an NTP step, an operator, a VM resume).
        func stepWall(_ ms: Int64) { state.withLock { $0.wallMs += ms } }
        func reboot() {
            state.withLock {
                $0.boot = "b"; $0.monotonicMs = 1_000
            }
        }
        var wall: Int64 { state.withLock { $0.wallMs } }
    }

    static let logger = Logger(label: "test")

    @Test(
        "a backward step of the wall clock is not followed: times keep advancing with elapsed time, and the step is counted once"
    )
    func backwardStep() {
        let time = FakeTime()
        let clock = CommitClock(persistingTo: nil, sources: time.sources, logger: Self.logger)
        let before = clock.now()
        time.pass(100)
        time.stepWall(-3_600_000)
        var times: [UInt64] = []
        for _ in 0..<10 {
            time.pass(250)
            times.append(clock.now())
        }
        #expect(times.first! == before + 350)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 == $0 + 250 }, "advancing, never frozen: \(times)")
        #expect(clock.steps.backward == 1)
    }

    @Test("a forward step is followed")
    func forwardStep() {
        let time = FakeTime()
        let clock = CommitClock(persistingTo: nil, sources: time.sources, logger: Self.logger)
        time.pass(10)
        time.stepWall(600_000)
        #expect(Int64(clock.now()) == time.wall)
        #expect(clock.steps.forward == 1)
        // Within the tolerance: a wall clock that leads is followed (a commit time is never
        // before the wall time it was read at); one that lags is not, and neither is a step.
        let steady = clock.now()
        time.pass(100)
        time.stepWall(300)
        #expect(clock.now() == steady + 400)
        time.pass(100)
        time.stepWall(-600)
        #expect(clock.now() == steady + 500)
        #expect(clock.steps.backward == 0 && clock.steps.forward == 1)
    }

    @Test(
        "a step back while the agent was down is not followed either when it restarts on the same boot; after a reboot the wall clock is used"
    )
    func acrossRestarts() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let time = FakeTime()
        let path = directory.file("clock.json")
        let first = CommitClock(persistingTo: path, sources: time.sources, logger: Self.logger)
        time.pass(1_000)
        let last = first.now()
        time.pass(2_000)
        time.stepWall(-3_600_000)
        let second = CommitClock(persistingTo: path, sources: time.sources, logger: Self.logger)
        #expect(second.now() == last + 2_000)
        #expect(second.steps.backward == 1)
        time.reboot()
        let third = CommitClock(persistingTo: path, sources: time.sources, logger: Self.logger)
        #expect(Int64(third.now()) == time.wall)
    }

    @Test("times never fall below the replica's newest commit time, and still advance from it")
    func floor() {
        let time = FakeTime()
        let clock = CommitClock(persistingTo: nil, sources: time.sources, logger: Self.logger)
        let floor = UInt64(time.wall) + 60_000
        clock.raiseFloor(to: floor)
        #expect(clock.now() == floor)
        time.pass(40)
        #expect(clock.now() == floor + 40)
    }
}
