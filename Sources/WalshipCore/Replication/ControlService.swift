import Logging

/// The agent's control sockets as one service of its group, listed before the replication
/// service: each replicator's socket (`ControlSocket`, `<state-dir>/<db>/control.sock`) listens
/// from the agent's start until its replicators have stopped and shipped, then closes. Requests go
/// to the replicator's `ControlEndpoint`. The sockets open when the service is made, before the
/// group runs, while the caller holds every database's lock (which makes a socket file already
/// there stale, and which each replicator then shares); a socket that cannot be opened leaves the
/// agent running without it (warned): `walship snapshot` cannot reach that database.
public final class ControlService: Service {
    private let sockets: [ControlSocket]

    /// Opens a socket for each of `replicators`; the caller holds their databases' locks.
    public init(_ replicators: [DatabaseReplicator], logger: Logger) {
        sockets = replicators.compactMap { replicator in
            do {
                try FileSystem.createDirectories(replicator.stateDirectory, mode: 0o700)
                let endpoint = replicator.control
                return try ControlSocket.listen(at: replicator.stateDirectory + "/control.sock", logger: logger) {
                    endpoint.answer($0)
                }
            } catch {
                logger.warning(
                    "no control socket: walship snapshot cannot reach this agent",
                    metadata: ["db.path": "\(replicator.databasePath)", "error": "\(error)"])
                return nil
            }
        }
    }

    /// Answers until the group shuts down (after replication, listed after it, has stopped).
    public func run() async {
        await gracefulShutdown()
        close()
    }

    /// Stops listening and removes the socket files (again is a no-op).
    public func close() {
        for socket in sockets { socket.close() }
    }
}
