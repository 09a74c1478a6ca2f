import Logging
import WalshipCore

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
