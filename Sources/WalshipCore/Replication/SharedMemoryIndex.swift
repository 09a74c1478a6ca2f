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
/// one replicator per bucket in the same process: they share the descriptor through
/// `SharedMemoryFile`, which each replicator joins (`register`) before it opens any connection
/// and leaves (`close`) after it closed them all, so the descriptor closes only when no
/// replicator of this process has a connection to the database.
final class SharedMemoryIndex {
    let path: String
    let databasePath: String
    private(set) var shared: SharedMemoryFile?
    private var descriptor: Int32 = -1

    init(databasePath: String) {
        self.databasePath = databasePath
        path = databasePath + "-shm"
    }

    /// Joins the database's shared entry. Call before opening any connection.
    func register() {
        if shared == nil { shared = SharedMemoryFile.register(databasePath: databasePath) }
    }

    /// Opens (or reuses) the descriptor; call after a connection has completed a read.
    func open() throws {
        register()
        guard descriptor < 0, let shared else { return }
        descriptor = try shared.descriptor(for: path)
    }

    /// Leaves the shared entry. Call only after every connection of this replicator to the
    /// database is closed; the descriptor closes when no replicator of this process uses it.
    func close() {
        shared?.release()
        shared = nil
        descriptor = -1
    }

    /// `nBackfill` of the checkpoint information that follows the two header copies (offset 96,
    /// native byte order): the frames a checkpoint has copied into the database file. nil when it
    /// cannot be read.
    func readBackfill() -> UInt32? {
        guard descriptor >= 0 else { return nil }
        var value: UInt32 = 0
        let count = withUnsafeMutableBytes(of: &value) { pread(descriptor, $0.baseAddress, 4, 96) }
        return count == 4 ? value : nil
    }

    /// Reads a consistent wal-index header, retrying while a writer is updating it; nil when no
    /// consistent read succeeded (the caller skips this poll).
    func readHeader(attempts: Int = 20) -> WALIndexHeader? {
        guard descriptor >= 0 else { return nil }
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
}

/// One database as the replicators of this process share it (several buckets): the `-shm`
/// descriptor, and the bounded checkpoints running on it. Keyed by the database's absolute
/// path; a replicator joins before opening connections and leaves after closing them, and the
/// descriptors close when the last one leaves. A RESTART checkpoint needs every reader off the
/// WAL, so while any replicator of this process runs one, all of them poll and rotate their read
/// transactions quickly (`pause` returns early when one starts).
final class SharedMemoryFile: @unchecked Sendable {  // Mutable fields are guarded by `condition`.
    private let key: String
    private let condition = MonotonicCondition()
    private var users = 1
    private var checkpoints = 0
    /// Open descriptors and the `-shm` file each refers to. Normally one; a `-shm` replaced
    /// while a replicator still has connections gets a second, and both stay open until the
    /// last replicator leaves (closing either earlier could drop locks).
    private var descriptors: [(fd: Int32, identity: FileIdentity)] = []

    private static let registry = Mutex<[String: SharedMemoryFile]>([:])

    private init(key: String) {
        self.key = key
    }

    /// Joins (or creates) the entry of the database at `databasePath`.
    static func register(databasePath: String) -> SharedMemoryFile {
        let key = FileSystem.absolute(databasePath)
        return registry.withLock { files in
            if let file = files[key] {
                file.condition.lock()
                file.users += 1
                file.condition.unlock()
                return file
            }
            let file = SharedMemoryFile(key: key)
            files[key] = file
            return file
        }
    }

    /// The descriptor of the `-shm` file now at `path`, opened if this process has none on it.
    func descriptor(for path: String) throws -> Int32 {
        condition.lock()
        defer { condition.unlock() }
        let current = FileIdentity(path: path)
        if let current, let open = descriptors.first(where: { $0.identity == current }) { return open.fd }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw WalshipError(
                .databaseUnusable, "open '\(path)' for reading failed: \(FileSystem.describe(errno: errno))")
        }
        var info = stat()
        _ = fstat(fd, &info)
        descriptors.append((fd, FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))))
        return fd
    }

    /// Whether another process holds a read lock on one of the wal-index's read-mark slots 1 to 4
    /// of the `-shm` file at `path`: a read transaction of the application that uses the WAL (slot
    /// 0 reads the database file alone). A query for a POSIX lock never reports the calling
    /// process's own locks, so the agent's readers (every replicator of this process) do not
    /// count. False when it cannot tell.
    func otherProcessReadsWAL(path: String) -> Bool {
        guard let fd = try? descriptor(for: path) else { return false }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(WALIndexHeader.readLockOffset + 1)
        lock.l_len = 4
        guard fcntl(fd, F_GETLK, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
    }

    /// One replicator leaves; the last closes the descriptors.
    func release() {
        Self.registry.withLock { files in
            condition.lock()
            users -= 1
            let last = users == 0
            let closing = last ? descriptors : []
            if last { descriptors = [] }
            condition.unlock()
            if last {
                files[key] = nil
                for entry in closing { _ = Glibc.close(entry.fd) }
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
        condition.lock()
        defer { condition.unlock() }
        condition.wait(for: duration) { checkpoints == 0 }
    }
}
