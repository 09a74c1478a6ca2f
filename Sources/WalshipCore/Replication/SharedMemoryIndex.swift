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
/// of this process to the database is closed.
final class SharedMemoryIndex {
    let path: String
    private var descriptor: Int32 = -1

    init(databasePath: String) {
        path = databasePath + "-shm"
    }

    func open() throws {
        guard descriptor < 0 else { return }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw WalshipError(
                .databaseUnusable, "open '\(path)' for reading failed: \(FileSystem.describe(errno: errno))")
        }
        descriptor = fd
    }

    /// Closes the descriptor. Call only after every connection to the database is closed.
    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
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
