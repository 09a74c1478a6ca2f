import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An advisory lock that one agent holds while it replicates a database file to one replica: a
/// write lock on one byte of the database file, past the bytes SQLite locks (`PENDING_BYTE` is
/// 0x40000000, its shared range ends 512 bytes later), at an offset chosen by the replica's
/// location. Two agents with their own state directories (a rolling deploy whose new pod copied
/// the state, a second sidecar on the same volume) would otherwise both continue one generation:
/// a fork whose restore points are ambiguous from then on. The second one waits instead.
///
/// An open file description lock (`F_OFD_SETLK`): it belongs to the descriptor, not to the
/// process, so SQLite's own POSIX locks on the file neither see nor drop it. The process opens one
/// descriptor per database file for these locks and never closes it before it exits, because
/// closing any descriptor of the database file drops every POSIX lock the process holds on it,
/// SQLite's included; `release` unlocks the byte.
public final class ReplicaLock: Sendable {
    private let descriptor: Int32
    private let offset: Int64

    /// Linux's `F_OFD_SETLK` (Glibc declares it only with _GNU_SOURCE).
    private static let ofdSetLock: Int32 = 37
    /// The first byte the locks use: past SQLite's lock bytes.
    static let base: Int64 = 0x4000_0000 + 4096

    private init(descriptor: Int32, offset: Int64) {
        self.descriptor = descriptor
        self.offset = offset
    }

    /// The byte an agent replicating to `replicaLocation` locks.
    static func offset(for replicaLocation: String) -> Int64 {
        base + Int64(XXH64.hash(Array(replicaLocation.utf8)) % (1 << 20))
    }

    /// Takes the lock, or returns nil when another agent holds it. A file system without open
    /// file description locks gives a lock that holds nothing (`isHeld` false).
    public static func tryAcquire(databasePath: String, replicaLocation: String) throws -> ReplicaLock? {
        let descriptor = try descriptors.withLock { open in
            if let descriptor = open[databasePath] { return descriptor }
            let descriptor = Glibc.open(databasePath, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { throw LocalFile.error("open for the replica lock", databasePath, errno) }
            open[databasePath] = descriptor
            return descriptor
        }
        let offset = offset(for: replicaLocation)
        switch set(descriptor, offset, type: Int16(F_WRLCK)) {
        case 0: return ReplicaLock(descriptor: descriptor, offset: offset)
        case EAGAIN, EACCES: return nil
        default: return ReplicaLock(descriptor: descriptor, offset: -1)
        }
    }

    /// The descriptor of each database file for these locks, by path; never closed.
    private static let descriptors = Mutex<[String: Int32]>([:])

    /// Whether the lock is held (false on a file system without open file description locks).
    public var isHeld: Bool { offset >= 0 }

    /// Unlocks the byte; the descriptor stays open until the process exits.
    public func release() {
        if offset >= 0 { _ = Self.set(descriptor, offset, type: Int16(F_UNLCK)) }
    }

    private static func set(_ descriptor: Int32, _ offset: Int64, type: Int16) -> Int32 {
        var lock = flock()
        lock.l_type = type
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(offset)
        lock.l_len = 1
        lock.l_pid = 0
        return fcntl(descriptor, ofdSetLock, &lock) == 0 ? 0 : errno
    }
}
