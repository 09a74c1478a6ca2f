import Foundation

/// Keeps snapshot connections out of the way when the WAL follower closes its connections and
/// its `-shm` descriptor (a new generation, a full spool, shutdown). POSIX locks belong to the
/// process, so closing that descriptor while a snapshot's connection is open would silently drop
/// the snapshot connection's read mark. `closeAndWait` cancels a running snapshot and returns
/// once its connection is closed; `open` lets snapshots run again.
final class SnapshotGate: @unchecked Sendable {  // Every field is guarded by `condition`.
    private let condition = NSCondition()
    private var active = 0
    private var closed = false

    /// Enters the gate before opening a connection; false while the gate is closed.
    func enter() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if closed { return false }
        active += 1
        return true
    }

    /// Leaves the gate after the connection is closed.
    func leave() {
        condition.lock()
        active -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Whether a running snapshot must stop.
    var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    func closeAndWait() {
        condition.lock()
        closed = true
        while active > 0 { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        closed = false
        condition.unlock()
    }
}
