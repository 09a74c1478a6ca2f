import Foundation
import Logging
import Synchronization
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// The one way a long-running command runs and stops: its services (the replicators, the metrics
/// server, `--exec`'s application) in one `ServiceGroup`. A graceful shutdown walks the services
/// from the last listed to the first, so they are listed in start order: the metrics server
/// answers until replication has stopped, and the application stops before replication's final
/// sync. When a service returns on its own (or throws), the rest shut down gracefully.
enum Lifecycle {
    /// Runs `services` until they end. With `trappingSignals`, the first SIGINT or SIGTERM
    /// (including one that came while walship started, see `EarlySignal`) shuts the group down
    /// gracefully (`onSignal` runs first, on a thread of its own: replication begins to stop even
    /// while the cooperative pool is busy) and a second exits at once with status 130; without
    /// (`--exec`), the signals belong to the application, whose exit ends the group.
    static func run(
        _ services: [(name: String, service: any Service)], trappingSignals: Bool,
        onSignal: @escaping @Sendable () -> Void = {}, logger: Logger
    ) async throws {
        let group = ServiceGroup(services, logger: logger)
        if trappingSignals {
            SignalTrap.install {
                logger.info("stopping: shipping what is committed (a second signal exits at once)")
                onSignal()
                group.triggerGracefulShutdown()
            }
        }
        try await group.run()
    }
}

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
