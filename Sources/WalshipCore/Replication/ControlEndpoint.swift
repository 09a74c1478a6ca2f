import Synchronization

/// Where the control socket's requests meet a replicator's run. The socket listens for as long as
/// the agent runs (`ControlService`); the run serves requests only once it replicates (its start
/// checked the database and the replica), until it has shipped what was committed at its stop.
/// Before and after, a request is answered at once with an error, never queued.
public final class ControlEndpoint: Sendable {
    private enum Phase {
        case starting
        case serving(@Sendable (String) -> String)
        case ended
    }

    private let phase = Mutex(Phase.starting)

    public init() {}

    /// A run begins (it is not serving yet).
    func begin() { phase.withLock { $0 = .starting } }

    /// The run replicates: `handler` answers each request line from now on.
    func serve(_ handler: @escaping @Sendable (String) -> String) { phase.withLock { $0 = .serving(handler) } }

    /// The run ended (stopped, failed, or never started).
    func end() { phase.withLock { $0 = .ended } }

    /// The reply line to one request line (on the socket's connection thread: a handler may wait).
    public func answer(_ request: String) -> String {
        switch phase.withLock({ $0 }) {
        case .serving(let handler):
            return handler(request)
        case .starting:
            return
                "unavailable this agent is still starting (waiting for the database, or checking it and the replica); try again once it replicates"
        case .ended:
            return "unavailable this agent no longer replicates the database (it stopped or failed; see its log)"
        }
    }
}
