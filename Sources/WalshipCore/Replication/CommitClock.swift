import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's clock for commit times, snapshot times and generation ids (DESIGN.md section 3,
/// "Commit times"): a monotonic clock anchored to the wall clock, so times never go back and
/// never stand still. A forward step of the wall clock (an NTP correction) moves the anchor
/// forward; a backward step is logged, counted and not followed: times keep advancing with
/// elapsed time. (Clamping to the last time instead, as walship 0.1 did, froze every commit after
/// a one-hour step back at one instant, and `restore --at` then returned commits made up to
/// seconds after its target.)
///
/// Across restarts too: the anchor (a wall time and the boot-time clock's reading then, with the
/// kernel's boot id) is kept in `<state-dir>/<db>/clock.json`; an agent restarted on the same boot
/// continues from it, so a step back while the agent was down is not followed either. Times
/// also never fall below the replica's newest commit time (`raiseFloor`).
public final class CommitClock: Sendable {
    /// Where the clock reads time; tests substitute their own.
    public struct Sources: Sendable {
        /// The wall clock, Unix nanoseconds.
        public var wallNanoseconds: @Sendable () -> Int64
        /// A clock that only moves forward, nanoseconds (CLOCK_BOOTTIME: it also counts suspend).
        public var monotonicNanoseconds: @Sendable () -> UInt64
        /// What identifies this boot (the monotonic clock restarts with each).
        public var bootID: @Sendable () -> String?

        public init(
            wallNanoseconds: @escaping @Sendable () -> Int64, monotonicNanoseconds: @escaping @Sendable () -> UInt64,
            bootID: @escaping @Sendable () -> String?
        ) {
            self.wallNanoseconds = wallNanoseconds
            self.monotonicNanoseconds = monotonicNanoseconds
            self.bootID = bootID
        }

        public static let system = Sources(
            wallNanoseconds: {
                var time = timespec()
                clock_gettime(CLOCK_REALTIME, &time)
                return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
            },
            monotonicNanoseconds: {
                var time = timespec()
                clock_gettime(CLOCK_BOOTTIME, &time)
                return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
            },
            bootID: {
                (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            })
    }

    /// The anchor kept across restarts.
    struct Anchor: Codable, Equatable {
        var bootID: String
        var monotonicNanoseconds: UInt64
        var wallNanoseconds: Int64
    }

    /// Times are kept in nanoseconds and cut to milliseconds only when handed out, so a commit
    /// time is never before the wall time (in milliseconds) it was read at.
    private struct State {
        var anchorWallNs: Int64
        var anchorNs: UInt64
        var lastMs: UInt64 = 0
        /// Set while the wall clock is behind (logged once per step).
        var wallBehind = false
        var backwardSteps: UInt64 = 0
        var forwardSteps: UInt64 = 0
    }

    /// A wall clock this far (1 s, in nanoseconds) from the monotonic clock's time is a step.
    public static let stepTolerance: Int64 = 1_000_000_000

    private let sources: Sources
    private let path: String?
    private let logger: Logger
    private let state: Mutex<State>

    /// A clock anchored at the wall clock, or at the anchor `path` holds from this boot.
    public init(persistingTo path: String?, sources: Sources = .system, logger: Logger) {
        self.sources = sources
        self.path = path
        self.logger = logger
        let wall = sources.wallNanoseconds()
        let monotonic = sources.monotonicNanoseconds()
        var initial = State(anchorWallNs: wall, anchorNs: monotonic)
        if let path, let data = try? FileSystem.contents(of: path),
            let saved = try? JSONDecoder().decode(Anchor.self, from: Data(data)),
            let boot = sources.bootID(), saved.bootID == boot, saved.monotonicNanoseconds <= monotonic
        {
            let continued = saved.wallNanoseconds + Int64(monotonic - saved.monotonicNanoseconds)
            if wall < continued - Self.stepTolerance {
                // Stepped back while the agent was down: continue from before the step.
                initial = State(anchorWallNs: saved.wallNanoseconds, anchorNs: saved.monotonicNanoseconds)
                initial.wallBehind = true
                initial.backwardSteps = 1
                logger.warning(
                    "the wall clock is behind the time walship kept across its restart; commit times continue from before the step",
                    metadata: ["clock.behind_ms": "\((continued - wall) / 1_000_000)"])
            }
        }
        state = Mutex(initial)
        persist()
    }

    /// The time for a commit read now (Unix ms): never before the previous one.
    public func now() -> UInt64 {
        let wall = sources.wallNanoseconds()
        let monotonic = sources.monotonicNanoseconds()
        var event: (forward: Bool, difference: Int64)?
        let result = state.withLock { state -> UInt64 in
            var candidate = state.anchorWallNs + Int64(monotonic &- state.anchorNs)
            if wall > candidate + Self.stepTolerance {
                event = (true, wall - candidate)
                state.forwardSteps += 1
            }
            if wall >= candidate {
                // The wall clock leads (a forward step, or within the tolerance): it is followed,
                // so a commit time is never before the wall time it was read at, and the anchor
                // moves with it, so a later lag is measured from here.
                state.wallBehind = false
                state.anchorWallNs = wall
                state.anchorNs = monotonic
                candidate = wall
            } else if wall < candidate - Self.stepTolerance {
                if !state.wallBehind {
                    state.wallBehind = true
                    state.backwardSteps += 1
                    event = (false, candidate - wall)
                }
            } else {
                state.wallBehind = false
            }
            state.lastMs = max(state.lastMs, UInt64(max(0, candidate / 1_000_000)))
            return state.lastMs
        }
        if let event {
            if event.forward {
                logger.info(
                    "the wall clock stepped forward; commit times follow it",
                    metadata: ["clock.step_ms": "\(event.difference / 1_000_000)"])
                persist()
            } else {
                logger.warning(
                    "the wall clock stepped back; commit times keep advancing from before the step (not followed)",
                    metadata: ["clock.step_ms": "\(event.difference / 1_000_000)"])
            }
        }
        return result
    }

    /// Keeps times at or after `milliseconds` (the replica's newest commit time): a clock behind
    /// it is re-anchored there.
    public func raiseFloor(to milliseconds: UInt64) {
        let floor = Int64(clamping: milliseconds) * 1_000_000
        let raised = state.withLock { state -> Bool in
            state.lastMs = max(state.lastMs, milliseconds)
            let monotonic = sources.monotonicNanoseconds()
            let candidate = state.anchorWallNs + Int64(monotonic &- state.anchorNs)
            guard candidate < floor else { return false }
            state.anchorWallNs = floor
            state.anchorNs = monotonic
            return true
        }
        if raised { persist() }
    }

    /// Backward steps seen (and not followed), and forward steps followed.
    public var steps: (backward: UInt64, forward: UInt64) { state.withLock { ($0.backwardSteps, $0.forwardSteps) } }

    private func persist() {
        guard let path, let boot = sources.bootID() else { return }
        let anchor = state.withLock {
            Anchor(bootID: boot, monotonicNanoseconds: $0.anchorNs, wallNanoseconds: $0.anchorWallNs)
        }
        guard let data = try? JSONEncoder().encode(anchor) else { return }
        try? FileSystem.writeAtomically(Array(data), to: path, mode: 0o600)
    }
}
