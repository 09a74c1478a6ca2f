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

    /// On-demand snapshots (`walship snapshot`): survive generation changes, unlike `State`.
    private struct Demand {
        /// The earliest pending demand (Unix ms): a snapshot taken at or after it satisfies it.
        var sinceMs: UInt64?
        var lastHeader: ObjectHeader?
        var failures = 0
    }

    private let demandState = Mutex(Demand())

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

    /// Asks for a snapshot taken at or after `ms`, whatever the interval says.
    func demand(atMs ms: UInt64) {
        demandState.withLock { $0.sinceMs = min($0.sinceMs ?? ms, ms) }
    }

    var isDemanded: Bool { demandState.withLock { $0.sinceMs != nil } }

    /// The newest snapshot taken (in the spool or uploaded) and the count of failed attempts.
    var demandOutcome: (header: ObjectHeader?, failures: Int) {
        demandState.withLock { ($0.lastHeader, $0.failures) }
    }

    func finished(generation: GenerationID, header: ObjectHeader?) {
        demandState.withLock { demand in
            guard let header else {
                demand.failures += 1
                return
            }
            demand.lastHeader = header
            if let since = demand.sinceMs, header.firstMs >= since { demand.sinceMs = nil }
        }
        finished(generation: generation, takenMs: header?.firstMs, txid: header?.lastTxid)
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
