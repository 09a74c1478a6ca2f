import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM for a running group, handled in the signal handler itself: the second exits
/// at once (130) whatever the rest of the process is doing, and the first wakes a thread of its
/// own (through a pipe, the one thing a handler may safely do) that starts the graceful stop. A
/// task listening for signals instead waited for a free thread of the cooperative pool, which
/// blocking work (a large object written to a `file://` replica) could hold for seconds.
enum SignalTrap {
    private static let received = Atomic<Int>(0)
    private static let wakeFD = Atomic<Int32>(-1)

    /// Installs the handlers; `first` runs once, on the first signal (or at once when one came
    /// while walship started).
    static func install(_ first: @escaping @Sendable () -> Void) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        let readFD = fds[0]
        wakeFD.store(fds[1], ordering: .sequentiallyConsistent)
        let thread = Thread {
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) < 0 && errno == EINTR {}
            first()
        }
        thread.name = "walship-signals"
        thread.start()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in SignalTrap.signalled() }
        }
        if EarlySignal.received.load(ordering: .relaxed) { noteFirst() }
    }

    /// A signal: the first wakes the thread, a second exits.
    private static func signalled() {
        if received.add(1, ordering: .sequentiallyConsistent).newValue > 1 { _exit(130) }
        wake()
    }

    /// A signal that came before the handlers: counts as the first, unless one came since.
    private static func noteFirst() {
        if received.add(1, ordering: .sequentiallyConsistent).newValue == 1 { wake() }
    }

    private static func wake() {
        var byte: UInt8 = 1
        _ = write(wakeFD.load(ordering: .sequentiallyConsistent), &byte, 1)
    }
}
