import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Turns SIGINT/SIGTERM into a flag that long synchronous work (backup, restore) checks between
/// steps, so it can clean up its temporary files and exit with status 130. A second signal exits
/// at once.
enum Cancellation {
    static let requested = Atomic<Bool>(false)

    static var isRequested: Bool { requested.load(ordering: .relaxed) }

    /// Installs the handlers for SIGINT and SIGTERM; a signal that arrived during start-up
    /// counts as the first.
    static func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in
                if Cancellation.requested.exchange(true, ordering: .relaxed) {
                    _exit(130)
                }
            }
        }
        if EarlySignal.received.load(ordering: .relaxed) { requested.store(true, ordering: .relaxed) }
    }
}

/// SIGINT/SIGTERM that arrive while walship starts (before a command installs its own handler)
/// are remembered rather than killing the process half-way: `replicate` then stops gracefully
/// and `backup`/`restore` cancel cleanly. Commands without handlers get the default action back
/// (and exit 130 if a signal already came).
enum EarlySignal {
    static let received = Atomic<Bool>(false)

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in EarlySignal.received.store(true, ordering: .relaxed) }
        }
    }

    static func restoreDefault() {
        for signalNumber in [SIGINT, SIGTERM] { signal(signalNumber, SIG_DFL) }
        if received.load(ordering: .relaxed) { _exit(130) }
    }
}
