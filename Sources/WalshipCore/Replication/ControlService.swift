import Logging

/// The agent's control sockets as one service of its group, listed before the replication
/// service: each replicator's socket (`ControlSocket`, `<state-dir>/<db>/control.sock`) listens
/// from the agent's start until its replicators have stopped and shipped, then closes. Requests go
/// to the replicator's `ControlEndpoint`. A socket that cannot be opened leaves the agent running
/// without it (warned): `walship snapshot` cannot reach that database.
public final class ControlService: Service {
    private let replicators: [DatabaseReplicator]
    private let logger: Logger

    public init(_ replicators: [DatabaseReplicator], logger: Logger) {
        self.replicators = replicators
        self.logger = logger
    }

    public func run() async {
        let opened = replicators.compactMap { open(for: $0) }
        await gracefulShutdown()
        for (socket, lock) in opened {
            socket.close()
            lock.release()
        }
    }

    /// Listens at the replicator's socket path, holding its database lock (which makes a socket
    /// file already there stale). With the lock held by another agent, there is no socket: the
    /// replicator fails on that lock and says so.
    private func open(for replicator: DatabaseReplicator) -> (ControlSocket, DatabaseLock)? {
        let lock: DatabaseLock
        do {
            lock = try DatabaseLock.acquire(
                directory: replicator.databaseDirectory, databasePath: replicator.databasePath)
        } catch {
            return nil
        }
        do {
            try FileSystem.createDirectories(replicator.stateDirectory, mode: 0o700)
            let endpoint = replicator.control
            let socket = try ControlSocket.listen(at: replicator.stateDirectory + "/control.sock", logger: logger) {
                endpoint.answer($0)
            }
            return (socket, lock)
        } catch {
            lock.release()
            logger.warning(
                "no control socket: walship snapshot cannot reach this agent",
                metadata: ["db.path": "\(replicator.databasePath)", "error": "\(error)"])
            return nil
        }
    }
}
