import Logging

/// The services of a long-running command, run together and stopped along one path. When one of
/// them ends (returns or throws) or `triggerGracefulShutdown` is called, the others are shut down
/// gracefully one at a time, from the last listed to the first, each ended before the next is
/// asked: list them in start order, and what starts first stops last.
///
/// This is the shape of swift-service-lifecycle's `ServiceGroup` (and its
/// `withGracefulShutdownHandler`), written here because that package, with the
/// swift-async-algorithms and swift-collections it brings, cost the agent 1.8 MB of resident
/// memory for the few calls walship makes (docs/architecture.md, "Lifecycle, threads and
/// shutdown").
public final class ServiceGroup: Sendable {
    private let services: [(name: String, service: any Service)]
    /// Each service's own graceful shutdown, in the order of `services`.
    private let triggers: [ShutdownTrigger]
    /// The group's: a signal, or the caller.
    private let shutdown = ShutdownTrigger()
    private let logger: Logger

    /// What ended in the group's task group.
    private enum Ended: Sendable {
        case service(Int, (any Error)?)
        case shutdownRequested
    }

    public init(_ services: [(name: String, service: any Service)], logger: Logger) {
        self.services = services
        self.triggers = services.map { _ in ShutdownTrigger() }
        self.logger = logger
    }

    /// Starts the graceful shutdown; callable from any thread, at any time (again is a no-op).
    public func triggerGracefulShutdown() {
        shutdown.trigger()
    }

    /// Runs every service until all have ended; then throws the first error one threw.
    public func run() async throws {
        guard !services.isEmpty else { return }
        let firstError = await withTaskGroup(of: Ended.self) { group -> (any Error)? in
            for (index, entry) in services.enumerated() {
                group.addTask { [trigger = triggers[index]] in
                    do {
                        try await ShutdownTrigger.$current.withValue(trigger) { try await entry.service.run() }
                        return .service(index, nil)
                    } catch {
                        return .service(index, error)
                    }
                }
            }
            group.addTask { [shutdown] in
                await shutdown.wait()
                return .shutdownRequested
            }
            var running = Set(services.indices)
            var firstError: (any Error)?
            func record(_ ended: Ended?) {
                guard case .service(let index, let error)? = ended else { return }
                running.remove(index)
                logger.debug(
                    "service ended",
                    metadata: ["service": "\(services[index].name)", "error": "\(error.map { "\($0)" } ?? "none")"])
                if firstError == nil { firstError = error }
            }
            record(await group.next())
            for index in services.indices.reversed() {
                guard running.contains(index) else { continue }
                logger.debug("shutting down service", metadata: ["service": "\(services[index].name)"])
                triggers[index].trigger()
                while running.contains(index), let ended = await group.next() { record(ended) }
            }
            // What is left is the wait for `triggerGracefulShutdown`, which cancellation ends.
            group.cancelAll()
            return firstError
        }
        if let firstError { throw firstError }
    }
}
