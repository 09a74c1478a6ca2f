import Synchronization

/// Which snapshots are wanted, running and done for the current generation; shared by the WAL
/// loop (which asks for snapshots) and the snapshot task (which takes them).
final class SnapshotBook: Sendable {
    private struct State {
        var generation: GenerationID?
        var hasSnapshot = false
        var requested = false
        var lastTakenMs: UInt64?
        var lastTxid: UInt64?
    }

    private let state = Mutex(State())

    /// Starts bookkeeping for a generation.
    func reset(generation: GenerationID, hasSnapshot: Bool, lastTakenMs: UInt64?, lastTxid: UInt64?) {
        state.withLock {
            $0 = State(generation: generation, hasSnapshot: hasSnapshot, lastTakenMs: lastTakenMs, lastTxid: lastTxid)
        }
    }

    /// Marks a request as made; false when one is already outstanding.
    func markRequested() -> Bool {
        state.withLock { state in
            if state.requested { return false }
            state.requested = true
            return true
        }
    }

    func finished(generation: GenerationID, takenMs: UInt64?, txid: UInt64?) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.requested = false
            if let takenMs {
                state.hasSnapshot = true
                state.lastTakenMs = takenMs
                state.lastTxid = txid
            }
        }
    }

    var hasSnapshot: Bool { state.withLock { $0.hasSnapshot } }
    var isRequested: Bool { state.withLock { $0.requested } }
    var last: (ms: UInt64?, txid: UInt64?) { state.withLock { ($0.lastTakenMs, $0.lastTxid) } }
}
