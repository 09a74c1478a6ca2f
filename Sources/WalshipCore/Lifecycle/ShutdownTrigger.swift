import Synchronization

/// One request to shut down gracefully: triggered at most once. Handlers registered before it run
/// when it is triggered, on the triggering thread (so they must be quick: they ask, they do not
/// wait); one registered after it is refused, and its caller runs it at once.
final class ShutdownTrigger: Sendable {
    /// The trigger of the service the current task runs in; nil outside a `ServiceGroup`.
    @TaskLocal static var current: ShutdownTrigger?

    private struct State {
        var triggered = false
        var nextID = 0
        var handlers: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    /// Triggers it (again is a no-op) and runs the handlers registered so far, in order.
    func trigger() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.triggered else { return [] }
            state.triggered = true
            defer { state.handlers = [:] }
            return state.handlers.sorted { $0.key < $1.key }.map(\.value)
        }
        for handler in handlers { handler() }
    }

    /// Registers `handler` and returns its id for `unregister`; nil (nothing registered) once
    /// triggered.
    func register(_ handler: @escaping @Sendable () -> Void) -> Int? {
        state.withLock { state in
            guard !state.triggered else { return nil }
            state.nextID += 1
            state.handlers[state.nextID] = handler
            return state.nextID
        }
    }

    func unregister(_ id: Int) {
        _ = state.withLock { $0.handlers.removeValue(forKey: id) }
    }

    /// Returns once triggered, or once the task is cancelled.
    func wait() async {
        let waiter = Waiter()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.set(continuation)
                if let id = register({ waiter.resume() }) {
                    waiter.onResume { self.unregister(id) }
                } else {
                    waiter.resume()
                }
            }
        } onCancel: {
            waiter.resume()
        }
    }

    /// A continuation resumed exactly once, by whichever comes first: the trigger, the task's
    /// cancellation, or a trigger that came before.
    private final class Waiter: Sendable {
        private struct State {
            var continuation: CheckedContinuation<Void, Never>?
            var resumed = false
            var cleanup: (@Sendable () -> Void)?
        }

        private let state = Mutex(State())

        /// Sets the continuation; resumes it at once when a resume came first (a cancelled task).
        func set(_ continuation: CheckedContinuation<Void, Never>) {
            let resumeNow = state.withLock { state -> Bool in
                if state.resumed { return true }
                state.continuation = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }

        /// Runs `cleanup` when resumed (at once when it already was).
        func onResume(_ cleanup: @escaping @Sendable () -> Void) {
            let runNow = state.withLock { state -> Bool in
                if state.resumed { return true }
                state.cleanup = cleanup
                return false
            }
            if runNow { cleanup() }
        }

        func resume() {
            let (continuation, cleanup) = state.withLock { state in
                guard !state.resumed else {
                    return (CheckedContinuation<Void, Never>?.none, (@Sendable () -> Void)?.none)
                }
                state.resumed = true
                defer {
                    state.continuation = nil
                    state.cleanup = nil
                }
                return (state.continuation, state.cleanup)
            }
            continuation?.resume()
            cleanup?()
        }
    }
}
