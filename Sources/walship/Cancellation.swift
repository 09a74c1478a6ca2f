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

    /// Installs the handlers for SIGINT and SIGTERM.
    static func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in
                if Cancellation.requested.exchange(true, ordering: .relaxed) {
                    _exit(130)
                }
            }
        }
    }
}
