import Logging
import ServiceLifecycle
import UnixSignals
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// The one way a long-running command runs and stops: its services (the replicators, the metrics
/// server, `--exec`'s application) in one `ServiceGroup`. A graceful shutdown walks the services
/// from the last listed to the first, so they are listed in start order: the metrics server
/// answers until replication has stopped, and the application stops before replication's final
/// sync.
enum Lifecycle {
    /// Runs `services` until they end. With `trappingSignals`, the first SIGINT or SIGTERM
    /// (including one that came while walship started, see `EarlySignal`) shuts the group down
    /// gracefully and a second exits at once with status 130; without (`--exec`), the signals
    /// belong to the application, whose exit ends the group.
    static func run(
        _ services: [ServiceGroupConfiguration.ServiceConfiguration], trappingSignals: Bool, logger: Logger
    ) async throws {
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        let signals: Task<Void, Never>? =
            trappingSignals ? Task { await Self.shutDownOnSignals(group, logger: logger) } : nil
        defer { signals?.cancel() }
        try await group.run()
    }

    /// The signal handling while a group runs (`run`): installed before `EarlySignal`'s flag is
    /// read, so that no signal falls between the two.
    private static func shutDownOnSignals(_ group: ServiceGroup, logger: Logger) async {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        var received = EarlySignal.received.load(ordering: .relaxed) ? 1 : 0
        if received > 0 { await group.triggerGracefulShutdown() }
        for await signal in signals {
            received += 1
            if received > 1 { _exit(130) }
            logger.info(
                "stopping: shipping what is committed (a second signal exits at once)",
                metadata: ["signal": "\(signal)"])
            await group.triggerGracefulShutdown()
        }
    }

    /// A service of the group: when `ends` (it returns on its own), the rest shut down gracefully.
    static func service(_ service: any Service, named name: String) -> ServiceGroupConfiguration.ServiceConfiguration {
        ServiceGroupConfiguration.ServiceConfiguration(
            service: service, successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)
    }
}
