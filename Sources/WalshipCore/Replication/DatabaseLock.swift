import Foundation
import Logging
import Synchronization

/// An exclusive `flock` on `<state-dir>/<db>/lock`, one per database whatever its buckets: a
/// second agent for the same database fails with databaseUnusable (exit status 3). The
/// replicators of one database in this process (one per bucket) share it: `flock` locks belong to
/// an open file description, so a second descriptor would conflict with the first.
public final class DatabaseLock: @unchecked Sendable {  // `users` is guarded by the registry's lock.
    private let path: String
    private let descriptor: Int32
    private var users = 1

    private static let registry = Mutex<[String: DatabaseLock]>([:])

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    public static func acquire(directory: String, databasePath: String) throws -> DatabaseLock {
        try FileSystem.createDirectories(directory, mode: 0o700)
        let path = FileSystem.absolute(directory + "/lock")
        return try registry.withLock { locks in
            if let lock = locks[path] {
                lock.users += 1
                return lock
            }
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw LocalFile.error("open lock file", path, errno) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                close(fd)
                throw WalshipError(
                    .databaseUnusable,
                    "another walship agent is replicating '\(databasePath)' (lock '\(path)' is held)")
            }
            let lock = DatabaseLock(path: path, descriptor: fd)
            locks[path] = lock
            return lock
        }
    }

    public func release() {
        Self.registry.withLock { locks in
            users -= 1
            guard users == 0 else { return }
            locks[path] = nil
            flock(descriptor, LOCK_UN)
            close(descriptor)
        }
    }
}
