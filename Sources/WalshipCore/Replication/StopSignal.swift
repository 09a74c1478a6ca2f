import Synchronization

/// A stop request shared between the signal handler, the WAL loop and the uploader.
public final class StopSignal: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let immediate = Atomic<Bool>(false)

    public init() {}

    /// Asks for a graceful stop: stop reading, ship what is committed, exit.
    public func stop() { stopped.store(true, ordering: .relaxed) }

    /// Asks to stop at once (a second signal).
    public func stopNow() {
        stopped.store(true, ordering: .relaxed)
        immediate.store(true, ordering: .relaxed)
    }

    public var isStopped: Bool { stopped.load(ordering: .relaxed) }
    public var isImmediate: Bool { immediate.load(ordering: .relaxed) }
}
