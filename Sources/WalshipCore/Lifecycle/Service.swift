/// Long-running work a `ServiceGroup` runs and stops: the replicators, the metrics server,
/// `--exec`'s application.
public protocol Service: Sendable {
    /// Runs until the work is done, or until the group's graceful shutdown asks it to end (see
    /// `withGracefulShutdownHandler` and `gracefulShutdown()`).
    func run() async throws
}

/// Runs `operation`; if the graceful shutdown of the service this task runs in is triggered
/// meanwhile, `handler` is called once (at once when it was triggered before). Outside a
/// `ServiceGroup` the handler is never called.
public func withGracefulShutdownHandler<T>(
    isolation: isolated (any Actor)? = #isolation, operation: () async throws -> T,
    onGracefulShutdown handler: @escaping @Sendable () -> Void
) async rethrows -> T {
    guard let trigger = ShutdownTrigger.current else { return try await operation() }
    guard let id = trigger.register(handler) else {
        handler()
        return try await operation()
    }
    defer { trigger.unregister(id) }
    return try await operation()
}

/// Returns once the graceful shutdown of the service this task runs in is triggered, or the task
/// is cancelled (outside a `ServiceGroup`, only then).
public func gracefulShutdown() async {
    guard let trigger = ShutdownTrigger.current else {
        await ShutdownTrigger().wait()
        return
    }
    await trigger.wait()
}
