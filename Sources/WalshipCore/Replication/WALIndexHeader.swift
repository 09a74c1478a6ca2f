/// The wal-index header at the start of `-shm`, as SQLite 3.40 writes it (DESIGN.md section 3):
/// two 48-byte copies at offsets 0 and 48, in native byte order. A read is valid when the copies
/// are equal, `isInit` is 1 and `aCksum` is SQLite's checksum of bytes 0-39 (native words).
///
/// `mxFrame` is the last frame SQLite has published: a commit frame beyond it is not a
/// transaction yet (its writer may have died before publishing it).
public struct WALIndexHeader: Sendable, Equatable {
    public static let size = 48
    /// The `-shm` byte of SQLite's read lock on read-mark slot 0 (`WALINDEX_LOCK_OFFSET` 120 plus
    /// `WAL_READ_LOCK(0)` 3); slot i's is i bytes later.
    static let readLockOffset = 123

    public var version: UInt32
    public var change: UInt32
    public var pageSize: Int
    public var maxFrame: UInt32
    public var databasePages: UInt32
    /// The cumulative checksum in frame `maxFrame`'s header.
    public var frameChecksum: WALFormat.Checksum
    /// Raw bytes 16-23 of the `-wal` header, as big-endian words (like `WALFormat.Header`).
    public var salt1: UInt32
    public var salt2: UInt32

    /// Parses the first 96 bytes of `-shm`; nil when the copies differ, the header is not
    /// initialized, or its checksum does not match (a writer was updating it: read again).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> WALIndexHeader? {
        guard bytes.count >= 2 * size else { return nil }
        guard bytes[0..<size].elementsEqual(bytes[size..<(2 * size)]) else { return nil }
        guard bytes[12] == 1 else { return nil }
        let stored = WALFormat.Checksum(bytes.nativeUInt32(at: 40), bytes.nativeUInt32(at: 44))
        // walIndexTryHdr: walChecksumBytes(1, ...) — native byte order, which is little-endian
        // on every platform walship runs on.
        let computed = WALFormat.checksum(
            UnsafeRawBufferPointer(rebasing: bytes[0..<40]), bigEndian: !isLittleEndianHost, seed: .zero)
        guard stored == computed else { return nil }
        let rawPageSize = Int(bytes.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
        return WALIndexHeader(
            version: bytes.nativeUInt32(at: 0), change: bytes.nativeUInt32(at: 8),
            pageSize: (rawPageSize & 0xfe00) + ((rawPageSize & 1) << 16), maxFrame: bytes.nativeUInt32(at: 16),
            databasePages: bytes.nativeUInt32(at: 20),
            frameChecksum: WALFormat.Checksum(bytes.nativeUInt32(at: 24), bytes.nativeUInt32(at: 28)),
            salt1: bytes.bigEndianUInt32(at: 32), salt2: bytes.bigEndianUInt32(at: 36))
    }

    static var isLittleEndianHost: Bool { 1.littleEndian == 1 }
}
