import Synchronization

/// A stop request shared between the signal handler, the WAL loop and the uploader. Waits
/// (`sleep(for:wakingOn:)`) end as soon as the stop they wait for is requested, so a stop never
/// waits out a retry's backoff.
public final class StopSignal: Sendable {
    /// Which request ends a wait.
    public enum Level: Sendable {
        /// A graceful stop (or an immediate one).
        case stop
        /// Only an immediate stop (a second signal).
        case immediate
    }

    private struct Waiter {
        var level: Level
        var continuation: CheckedContinuation<Void, Never>
    }

    private let stopped = Atomic<Bool>(false)
    private let immediate = Atomic<Bool>(false)
    private let waiters = Mutex<(next: Int, waiting: [Int: Waiter])>((0, [:]))

    public init() {}

    /// Asks for a graceful stop: stop reading, ship what is committed, exit.
    public func stop() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        wake(.stop)
    }

    /// Asks to stop at once (a second signal).
    public func stopNow() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        immediate.store(true, ordering: .sequentiallyConsistent)
        wake(.immediate)
    }

    public var isStopped: Bool { stopped.load(ordering: .sequentiallyConsistent) }
    public var isImmediate: Bool { immediate.load(ordering: .sequentiallyConsistent) }

    private func isReached(_ level: Level) -> Bool {
        level == .stop ? isStopped : isImmediate
    }

    /// Sleeps for `duration` on `clock`, or until a stop of `level` is requested (or the task is
    /// cancelled), whichever comes first.
    public func sleep(for duration: Duration, on clock: any MonotonicClock, wakingOn level: Level = .stop) async {
        guard !isReached(level) else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(for: duration) }
            group.addTask { await self.waitUntil(level) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Sleeps on the continuous clock (see `sleep(for:on:wakingOn:)`).
    public func sleep(for duration: Duration, wakingOn level: Level = .stop) async {
        await sleep(for: duration, on: ContinuousClock(), wakingOn: level)
    }

    /// Returns once a stop of `level` is requested or the task is cancelled.
    private func waitUntil(_ level: Level) async {
        let id = waiters.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = waiters.withLock { state -> Bool in
                    if isReached(level) || Task.isCancelled { return true }
                    state.waiting[id] = Waiter(level: level, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            waiters.withLock { $0.waiting.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    private func wake(_ reached: Level) {
        let woken = waiters.withLock { state -> [Waiter] in
            let matching = state.waiting.filter { reached == .immediate || $0.value.level == .stop }
            for id in matching.keys { state.waiting[id] = nil }
            return Array(matching.values)
        }
        for waiter in woken { waiter.continuation.resume() }
    }
}
