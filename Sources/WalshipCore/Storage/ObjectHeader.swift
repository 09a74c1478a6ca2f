/// The fixed 192-byte header that starts every snapshot and segment object (docs/format.md has
/// the byte table). All integers are big-endian. The header is closed by a CRC-32C of its first
/// 188 bytes, and carries the SHA-256 of the payload that follows it, so one object alone says
/// what it is and whether any byte of it is intact. The predecessor fields link objects into a
/// verifiable chain.
public struct ObjectHeader: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case snapshot = 1
        case segment = 2
    }

    /// Why a generation started; recorded in its snapshots.
    public enum GenerationReason: UInt8, Sendable, CaseIterable {
        case none = 0
        /// No generation existed for this replica.
        case firstStart = 1
        /// Continuity with the previous generation's WAL could not be proven after a break.
        case continuityLost = 2
        /// The database file was replaced (new inode) or left WAL mode.
        case databaseReplaced = 3
        /// The spool filled during a store outage and the read chain was ended.
        case spoolFull = 4
        /// The page size changed.
        case pageSizeChanged = 5
        /// The WAL changed in a way the agent could not follow (an inconsistent wal-index).
        case walInconsistent = 6
        /// An object of the previous generation could not be uploaded: its key already held a
        /// different (or corrupt) object, which is never overwritten.
        case objectConflict = 7

        /// The reason as a metric label value: `first_start`, `continuity_lost`, ...
        public var label: String {
            switch self {
            case .none: "none"
            case .firstStart: "first_start"
            case .continuityLost: "continuity_lost"
            case .databaseReplaced: "database_replaced"
            case .spoolFull: "spool_full"
            case .pageSizeChanged: "page_size_changed"
            case .walInconsistent: "wal_inconsistent"
            case .objectConflict: "object_conflict"
            }
        }

        public var description: String {
            switch self {
            case .none: "none"
            case .firstStart: "first start"
            case .continuityLost: "WAL continuity could not be proven"
            case .databaseReplaced: "database file replaced"
            case .spoolFull: "spool full during a store outage"
            case .pageSizeChanged: "page size changed"
            case .walInconsistent: "WAL changed unexpectedly"
            case .objectConflict: "an object's key held a different object in the store"
            }
        }
    }

    public static let size = 192
    public static let magic: [UInt8] = Array("WSHP".utf8)
    public static let formatVersion: UInt16 = 1

    public var kind: Kind
    public var codec: CompressionCodec
    public var reason: GenerationReason
    public var pageSize: UInt32
    public var generation: UInt64
    /// Segment: first txid. Snapshot: `fromTxid`.
    public var firstTxid: UInt64
    /// Segment: last txid. Snapshot: `usableTxid`.
    public var lastTxid: UInt64
    /// Commit time (Unix ms) of the first transaction; for a snapshot, when it was taken.
    public var firstMs: UInt64
    public var lastMs: UInt64
    public var uncompressedSize: UInt64
    public var payloadSize: UInt64
    public var payloadSHA256: [UInt8]
    /// Segment: this generation, or 0 for its first segment. Snapshot: the predecessor
    /// generation (0 when none).
    public var predecessorGeneration: UInt64
    /// Segment: the previous segment's last txid (the generation's base txid for the first).
    /// Snapshot: the predecessor generation's last txid.
    public var predecessorTxid: UInt64
    /// Segment: the previous segment's payload SHA-256 (zeros for the first).
    public var predecessorSHA256: [UInt8]
    /// Database size in pages after `lastTxid` (a snapshot: pages in the copy).
    public var databasePages: UInt32
    /// The WAL position after the last transaction: salts, frame and cumulative checksum.
    public var walSalt1: UInt32
    public var walSalt2: UInt32
    public var walFrame: UInt32
    public var walChecksum: WALFormat.Checksum

    public init(
        kind: Kind, codec: CompressionCodec, reason: GenerationReason = .none, pageSize: UInt32, generation: UInt64,
        firstTxid: UInt64, lastTxid: UInt64, firstMs: UInt64, lastMs: UInt64, uncompressedSize: UInt64 = 0,
        payloadSize: UInt64 = 0, payloadSHA256: [UInt8] = Array(repeating: 0, count: 32),
        predecessorGeneration: UInt64 = 0, predecessorTxid: UInt64 = 0,
        predecessorSHA256: [UInt8] = Array(repeating: 0, count: 32), databasePages: UInt32 = 0, walSalt1: UInt32 = 0,
        walSalt2: UInt32 = 0, walFrame: UInt32 = 0, walChecksum: WALFormat.Checksum = .zero
    ) {
        self.kind = kind
        self.codec = codec
        self.reason = reason
        self.pageSize = pageSize
        self.generation = generation
        self.firstTxid = firstTxid
        self.lastTxid = lastTxid
        self.firstMs = firstMs
        self.lastMs = lastMs
        self.uncompressedSize = uncompressedSize
        self.payloadSize = payloadSize
        self.payloadSHA256 = payloadSHA256
        self.predecessorGeneration = predecessorGeneration
        self.predecessorTxid = predecessorTxid
        self.predecessorSHA256 = predecessorSHA256
        self.databasePages = databasePages
        self.walSalt1 = walSalt1
        self.walSalt2 = walSalt2
        self.walFrame = walFrame
        self.walChecksum = walChecksum
    }

    /// The 192 header bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.append(Self.magic)
        writer.append(Self.formatVersion)
        writer.append(kind.rawValue)
        writer.append(codec.rawValue)
        writer.append(UInt16(0))  // flags
        writer.append(reason.rawValue)
        writer.append(UInt8(0))
        writer.append(pageSize)
        writer.append(generation)
        writer.append(firstTxid)
        writer.append(lastTxid)
        writer.append(firstMs)
        writer.append(lastMs)
        writer.append(uncompressedSize)
        writer.append(payloadSize)
        writer.append(Self.fixed32(payloadSHA256))
        writer.append(predecessorGeneration)
        writer.append(predecessorTxid)
        writer.append(Self.fixed32(predecessorSHA256))
        writer.append(databasePages)
        writer.append(walSalt1)
        writer.append(walSalt2)
        writer.append(walFrame)
        writer.append(walChecksum.first)
        writer.append(walChecksum.second)
        writer.append([UInt8](repeating: 0, count: 12))
        writer.append(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    static func fixed32(_ bytes: [UInt8]) -> [UInt8] {
        bytes.count == 32 ? bytes : Array((bytes + [UInt8](repeating: 0, count: 32)).prefix(32))
    }

    /// Decodes and checks a header; `key` names the object in errors (objectCorrupt).
    public static func decode(_ bytes: [UInt8], key: String) throws -> ObjectHeader {
        func corrupt(_ why: String) -> WalshipError {
            WalshipError(.objectCorrupt, "object '\(key)' is corrupt: \(why)")
        }
        guard bytes.count >= size else { throw corrupt("shorter than its \(size)-byte header") }
        guard Array(bytes[0..<4]) == magic else { throw corrupt("not a walship object (bad magic)") }
        var reader = ByteReader(bytes: Array(bytes[0..<size]))
        reader.skip(4)
        let version: UInt16 = reader.read()
        let storedCRC = UInt32(
            bigEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 188, as: UInt32.self) })
        guard CRC32C.checksum(bytes[0..<188]) == storedCRC else { throw corrupt("header checksum mismatch") }
        guard version == formatVersion else {
            throw corrupt("format version \(version) is not supported by this walship (supports \(formatVersion))")
        }
        guard let kind = Kind(rawValue: reader.read()) else { throw corrupt("unknown object kind") }
        guard let codec = CompressionCodec(rawValue: reader.read()) else { throw corrupt("unknown codec") }
        let flags: UInt16 = reader.read()
        guard flags == 0 else { throw corrupt("unsupported flags \(flags) (encryption is not supported yet)") }
        let reason = GenerationReason(rawValue: reader.read()) ?? .none
        reader.skip(1)
        var header = ObjectHeader(
            kind: kind, codec: codec, reason: reason, pageSize: reader.read(), generation: reader.read(),
            firstTxid: reader.read(), lastTxid: reader.read(), firstMs: reader.read(), lastMs: reader.read())
        header.uncompressedSize = reader.read()
        header.payloadSize = reader.read()
        header.payloadSHA256 = reader.readBytes(32)
        header.predecessorGeneration = reader.read()
        header.predecessorTxid = reader.read()
        header.predecessorSHA256 = reader.readBytes(32)
        header.databasePages = reader.read()
        header.walSalt1 = reader.read()
        header.walSalt2 = reader.read()
        header.walFrame = reader.read()
        header.walChecksum = WALFormat.Checksum(reader.read(), reader.read())
        return header
    }
}

/// Appends big-endian integers and bytes.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ data: [UInt8]) {
        bytes.append(contentsOf: data)
    }
}

/// Reads big-endian integers and bytes; reading past the end yields zeros (callers check sizes
/// first).
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func read<T: FixedWidthInteger>() -> T {
        let width = MemoryLayout<T>.size
        guard offset + width <= bytes.count else {
            offset = bytes.count
            return 0
        }
        var value: T = 0
        for index in 0..<width { value = value << 8 | T(bytes[offset + index]) }
        offset += width
        return value
    }

    mutating func readBytes(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + count)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }

    mutating func skip(_ count: Int) { offset += count }
}
