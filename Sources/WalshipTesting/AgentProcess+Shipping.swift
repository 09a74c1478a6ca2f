import Foundation
import WalshipCore

/// Waits for what an agent ships, so a test asks "has the agent shipped txid N" instead of sleeping
/// (STYLE.md: tests wait for events, never for time). The replica itself answers: an object whose
/// key names txid N is in the store only once its upload completed.
extension AgentProcess {
    /// The usable txid of the newest snapshot the agent logged ("snapshot taken"), nil before it
    /// logged one. A commit made after that line is the snapshot's usable txid plus its position.
    public var snapshotTxid: UInt64? {
        log.matches(of: /snapshot taken[^\n]* snapshot\.usable_txid=(\d+)/).last.flatMap { UInt64($0.1) }
    }

    /// Waits (at most `timeout`) until the replica in `store` holds an object through `txid`;
    /// throws, with how far the replica got and the agent's log, when it does not.
    public func waitUntilShipped(
        txid: UInt64, store: any ObjectStore, layout: ReplicaLayout = ReplicaLayout(prefix: ""),
        timeout: Duration = .seconds(30)
    ) async throws {
        try await waitUntilShipped(txid: txid, timeout: timeout) {
            try await ReplicaInventory.load(store: store, layout: layout).maxTxid
        }
    }

    /// Waits (at most `timeout`) until the `file://` replica at `replicaDirectory` (objects under
    /// `prefix`) holds an object through `txid`; throws when it does not.
    public func waitUntilShipped(
        txid: UInt64, replicaDirectory: String, prefix: String = "", timeout: Duration = .seconds(30)
    ) async throws {
        try await waitUntilShipped(txid: txid, timeout: timeout) {
            // Before the first upload the directory may not exist yet: nothing is shipped.
            guard FileManager.default.fileExists(atPath: replicaDirectory) else { return 0 }
            return try await ReplicaInventory.load(
                store: try FileObjectStore(root: replicaDirectory), layout: ReplicaLayout(prefix: prefix)
            ).maxTxid
        }
    }

    /// Waits (at most `timeout`) until the `file://` replica at `replicaDirectory` holds the
    /// `count` commits made after the agent's newest "snapshot taken" line (0: the snapshot).
    public func waitUntilShipped(
        commitsAfterSnapshot count: Int, replicaDirectory: String, prefix: String = "",
        timeout: Duration = .seconds(30)
    ) async throws {
        try await waitUntilShipped(
            txid: try txidAfterSnapshot(count), replicaDirectory: replicaDirectory, prefix: prefix, timeout: timeout)
    }

    /// Waits (at most `timeout`) until the agent's `/metrics` on `httpPort` (`--http-addr`)
    /// reports `walship_shipped_txid` of at least `txid`: the store confirmed a segment through it.
    public func waitUntilShipped(txid: UInt64, httpPort: UInt16, timeout: Duration = .seconds(30)) async throws {
        try await waitUntilShipped(txid: txid, timeout: timeout) {
            let response = try LoopbackHTTP.request(port: httpPort, path: "/metrics")
            let shipped = try LoopbackHTTP.samples(response.body).filter { $0.key.hasPrefix("walship_shipped_txid{") }
            return UInt64(shipped.values.max() ?? 0)
        }
    }

    /// The txid of the `count`th commit after the agent's newest "snapshot taken" line.
    public func txidAfterSnapshot(_ count: Int) throws -> UInt64 {
        guard let snapshot = snapshotTxid else {
            throw WalshipError(.internal, "the agent logged no snapshot to count commits from: \(log.suffix(3000))")
        }
        return snapshot + UInt64(count)
    }

    private func waitUntilShipped(
        txid: UInt64, timeout: Duration, shippedTxid: () async throws -> UInt64
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var shipped: UInt64 = 0
        var lastError: (any Error)?
        while true {
            do {
                shipped = try await shippedTxid()
                lastError = nil
            } catch {
                lastError = error  // a listing racing an upload; the next poll decides
            }
            if shipped >= txid { return }
            if !isRunning || clock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let why = isRunning ? "within \(timeout)" : "before the agent exited (status \(process.terminationStatus))"
        throw WalshipError(
            .internal,
            "the replica did not reach txid \(txid) \(why): it holds through txid \(shipped)\(lastError.map { " (last listing failed: \($0))" } ?? ""); agent log: \(log.suffix(3000))"
        )
    }
}
