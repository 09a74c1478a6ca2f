#if canImport(Glibc)
    import Glibc
#endif

/// Finds out whether another process has a database file open, before walship replaces it.
///
/// Two checks, because neither alone is enough: every connection to a WAL-mode database holds a
/// shared POSIX lock on the `-shm` "DMS" byte (offset 128, `UNIX_SHM_DMS` in os_unix.c) for as
/// long as it is open, which `F_GETLK` sees from any process; a rollback-journal connection holds
/// locks only inside transactions, so `/proc/<pid>/fd` is scanned too (complete as root, limited
/// to the caller's own processes otherwise).
///
/// The `-shm` check opens and closes that file: POSIX locks belong to the process, so it must
/// never run on a database this process itself has open through SQLite.
public enum OpenFileProbe {
    /// Byte offset of the DMS lock in `-shm` (os_unix.c: `(22 + SQLITE_SHM_NLOCK) * 4 + SQLITE_SHM_NLOCK`).
    static let shmDMSOffset: off_t = 128

    /// The process ids that have `path` (or its `-wal`/`-shm`) open, or hold a lock on its `-shm`.
    public static func holders(of path: String) -> [pid_t] {
        var result = Set<pid_t>()
        if let pid = shmLockHolder(path + "-shm") { result.insert(pid) }
        result.formUnion(processesWithOpen([path, path + "-wal", path + "-shm"]))
        result.remove(getpid())
        return result.sorted()
    }

    static func shmLockHolder(_ shmPath: String) -> pid_t? {
        let fd = open(shmPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = shmDMSOffset
        lock.l_len = 1
        guard fcntl(fd, F_GETLK, &lock) == 0 else { return nil }
        return lock.l_type == Int16(F_UNLCK) ? nil : lock.l_pid
    }

    static func processesWithOpen(_ paths: [String]) -> Set<pid_t> {
        var targets = Set<String>()
        for path in paths where FileSystem.exists(path) {
            targets.insert(FileSystem.canonical(path))
        }
        guard !targets.isEmpty else { return [] }
        var found = Set<pid_t>()
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        for name in FileSystem.entries(of: "/proc") ?? [] {
            guard let pid = pid_t(name) else { continue }
            let fdDirectory = "/proc/\(pid)/fd"
            for fdName in FileSystem.entries(of: fdDirectory) ?? [] {
                let count = readlink("\(fdDirectory)/\(fdName)", &buffer, buffer.count - 1)
                guard count > 0 else { continue }
                let target = buffer[0..<count].withUnsafeBufferPointer { pointer in
                    String(decoding: UnsafeRawBufferPointer(pointer), as: UTF8.self)
                }
                if targets.contains(target) {
                    found.insert(pid)
                    break
                }
            }
        }
        return found
    }
}
