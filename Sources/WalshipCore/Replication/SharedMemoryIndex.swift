import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's single read-only descriptor on `-shm` (DESIGN.md section 3), used only with
/// `pread` to read the wal-index header. Never `mmap`ed (a mapping duplicates the descriptor,
/// and unmapping drops the process's locks; a truncated `-shm` would raise SIGBUS).
///
/// POSIX locks belong to the process: closing any descriptor of `-shm` drops every read mark the
/// agent's connections hold. So it is opened once, after a connection has completed a read
/// (SQLite creates and locks `-shm` at the first read), and closed only after every connection
/// of this process to the database is closed. One database replicated to several buckets has
/// one replicator per bucket in the same process: they share one descriptor per `-shm` file
/// (`SharedMemoryFile`), closed when the last of them lets go.
final class SharedMemoryIndex {
    let path: String
    private var file: SharedMemoryFile?

    init(databasePath: String) {
        path = databasePath + "-shm"
    }

    func open() throws {
        guard file == nil else { return }
        file = try SharedMemoryFile.acquire(path)
    }

    /// Lets go of the descriptor. Call only after every connection of this replicator to the
    /// database is closed; the descriptor closes when no replicator of this process uses it.
    func close() {
        file?.release()
        file = nil
    }

    /// Reads a consistent wal-index header, retrying while a writer is updating it; nil when no
    /// consistent read succeeded (the caller skips this poll).
    func readHeader(attempts: Int = 20) -> WALIndexHeader? {
        guard let descriptor = file?.descriptor else { return nil }
        var bytes = [UInt8](repeating: 0, count: 2 * WALIndexHeader.size)
        for attempt in 0..<attempts {
            let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            if count == bytes.count, let header = bytes.withUnsafeBytes({ WALIndexHeader.parse($0) }) {
                return header
            }
            if attempt > 2 { usleep(UInt32(min(1000, 50 * attempt))) }
        }
        return nil
    }

    /// The file's coordination point for checkpoints of this process (nil before `open`).
    var shared: SharedMemoryFile? { file }
}

/// One `-shm` file as this process sees it, shared by every replicator of its database: the one
/// descriptor, and the bounded checkpoints running on it. A RESTART checkpoint needs every
/// reader off the WAL, so while any replicator of this process runs one, all of them poll and
/// rotate their read transactions quickly (`pause` returns early when one starts).
/// Keyed by the file's (device, inode), which is what POSIX locks belong to.
final class SharedMemoryFile: @unchecked Sendable {  // Mutable fields are guarded by `condition`.
    let descriptor: Int32
    private let identity: FileIdentity
    private let condition = NSCondition()
    private var users = 1
    private var checkpoints = 0

    private static let registry = Mutex<[FileIdentity: SharedMemoryFile]>([:])

    private init(descriptor: Int32, identity: FileIdentity) {
        self.descriptor = descriptor
        self.identity = identity
    }

    /// The shared descriptor of the `-shm` file at `path`, opened if this process has none.
    static func acquire(_ path: String) throws -> SharedMemoryFile {
        try registry.withLock { files in
            if let identity = FileIdentity(path: path), let file = files[identity] {
                file.condition.lock()
                file.users += 1
                file.condition.unlock()
                return file
            }
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                throw WalshipError(
                    .databaseUnusable, "open '\(path)' for reading failed: \(FileSystem.describe(errno: errno))")
            }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let error = errno
                _ = Glibc.close(fd)
                throw WalshipError(.databaseUnusable, "stat '\(path)' failed: \(FileSystem.describe(errno: error))")
            }
            let identity = FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            if let file = files[identity] {
                // The file was replaced between the stat and the open, and this process already
                // holds the new one: closing this second descriptor would drop its locks, so
                // keep it open for the life of the process (a few bytes, rare).
                file.condition.lock()
                file.users += 1
                file.condition.unlock()
                return file
            }
            let file = SharedMemoryFile(descriptor: fd, identity: identity)
            files[identity] = file
            return file
        }
    }

    /// One user lets go; the last closes the descriptor.
    func release() {
        Self.registry.withLock { files in
            condition.lock()
            users -= 1
            let last = users == 0
            condition.unlock()
            if last {
                files[identity] = nil
                _ = Glibc.close(descriptor)
            }
        }
    }

    /// Whether a bounded checkpoint of any replicator of this process runs on this database.
    var checkpointRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return checkpoints > 0
    }

    func checkpointStarted() {
        condition.lock()
        checkpoints += 1
        condition.broadcast()
        condition.unlock()
    }

    func checkpointEnded() {
        condition.lock()
        checkpoints -= 1
        condition.unlock()
    }

    /// Sleeps for `duration`, or until a checkpoint of this database starts in this process.
    func pause(_ duration: Duration) {
        let deadline = Date(timeIntervalSinceNow: Double(duration.milliseconds) / 1000)
        condition.lock()
        defer { condition.unlock() }
        while checkpoints == 0 && condition.wait(until: deadline) {}
    }
}
