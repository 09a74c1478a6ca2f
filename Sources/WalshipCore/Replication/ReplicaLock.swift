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
    /// The descriptor whose byte is locked, and that file's identity; nil descriptor when the
    /// file system has no open file description locks (the lock then holds nothing).
    private let held: Mutex<(descriptor: Int32, file: FileIdentity?)?>
    private let offset: Int64

    /// Linux's `F_OFD_SETLK` (Glibc declares it only with _GNU_SOURCE).
    private static let ofdSetLock: Int32 = 37
    /// The first byte the locks use: past SQLite's lock bytes.
    static let base: Int64 = 0x4000_0000 + 4096

    private init(descriptor: Int32?, file: FileIdentity?, offset: Int64) {
        held = Mutex(descriptor.map { ($0, file) })
        self.offset = offset
    }

    /// The byte an agent replicating to `replicaLocation` locks.
    static func offset(for replicaLocation: String) -> Int64 {
        base + Int64(XXH64.hash(Array(replicaLocation.utf8)) % (1 << 20))
    }

    /// Takes the lock, or returns nil when another agent holds it. A file system without open
    /// file description locks gives a lock that holds nothing (`isHeld` false).
    public static func tryAcquire(databasePath: String, replicaLocation: String) throws -> ReplicaLock? {
        let (descriptor, file) = try descriptor(for: databasePath)
        let offset = offset(for: replicaLocation)
        switch set(descriptor, offset, type: Int16(F_WRLCK)) {
        case 0: return ReplicaLock(descriptor: descriptor, file: file, offset: offset)
        case EAGAIN, EACCES: return nil
        default: return ReplicaLock(descriptor: nil, file: nil, offset: offset)
        }
    }

    /// A descriptor of the file now at `path`, one per file (by device and inode), never closed.
    private static func descriptor(for path: String) throws -> (Int32, FileIdentity?) {
        try descriptors.withLock { open in
            if let file = FileIdentity(path: path), let descriptor = open[file] { return (descriptor, file) }
            let descriptor = Glibc.open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { throw LocalFile.error("open for the replica lock", path, errno) }
            var info = stat()
            let file =
                fstat(descriptor, &info) == 0
                ? FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) : nil
            if let file { open[file] = descriptor }
            return (descriptor, file)
        }
    }

    /// The descriptor of each database file for these locks; never closed.
    private static let descriptors = Mutex<[FileIdentity: Int32]>([:])

    /// Whether the lock is held (false on a file system without open file description locks).
    public var isHeld: Bool { held.withLock { $0 != nil } }

    /// After the database file was replaced by another one (`mv new.db app.db`): locks the same
    /// byte of the file now at `databasePath` and unlocks the old one's, so that a second agent
    /// starting on the new file still waits. Throws when another agent holds the new file's byte
    /// (it started on the new file first): two agents must not replicate it.
    public func follow(databasePath: String) throws {
        guard let current = held.withLock({ $0 }), let now = FileIdentity(path: databasePath), now != current.file
        else { return }
        let (descriptor, file) = try Self.descriptor(for: databasePath)
        switch Self.set(descriptor, offset, type: Int16(F_WRLCK)) {
        case 0:
            _ = Self.set(current.descriptor, offset, type: Int16(F_UNLCK))
            held.withLock { $0 = (descriptor, file) }
        case EAGAIN, EACCES:
            throw WalshipError(
                .databaseUnusable,
                "the database file '\(databasePath)' was replaced, and another walship agent already replicates the new file to this replica (it holds the replica lock)"
            )
        default:
            break
        }
    }

    /// Unlocks the byte; the descriptor stays open until the process exits.
    public func release() {
        held.withLock { held in
            if let held { _ = Self.set(held.descriptor, offset, type: Int16(F_UNLCK)) }
            held = nil
        }
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
