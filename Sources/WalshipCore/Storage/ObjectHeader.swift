import Crypto

/// The fixed header that starts every snapshot and segment object (docs/format.md has the byte
/// tables): 256 bytes in format version 2, which walship writes, and 192 in version 1, which it
/// still reads. All integers are big-endian. The header is closed by a CRC-32C of the bytes before
/// it, and carries the SHA-256 of the payload that follows it, so one object alone says what it
/// is and whether any byte of it is intact. The predecessor fields link objects into a
/// verifiable chain. Version 2 adds the database identity and the database checksum
/// (`PageChecksum`) of the state the object ends at; a version 1 object has neither.
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
        /// The database file changed in a way no checkpoint explains (overwritten in place, or
        /// changed while walship was not running and no longer a valid database).
        case databaseChanged = 8
        /// The database was restored from this replica; the generation continues its lineage
        /// from the restore point (a branch, not a fork).
        case restored = 9
        /// The previous generation was continued by two agents (a copied state directory).
        case forked = 10

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
            case .databaseChanged: "database_changed"
            case .restored: "restored"
            case .forked: "forked"
            }
        }

        public var description: String {
            switch self {
            case .none: "none"
            case .firstStart: "first start"
            case .continuityLost: "WAL continuity could not be proven"
            case .databaseReplaced: "database file replaced"
            case .spoolFull: "spool full (a store outage) or no space for it"
            case .pageSizeChanged: "page size changed"
            case .walInconsistent: "WAL changed unexpectedly"
            case .objectConflict: "an object's key held a different object in the store"
            case .databaseChanged: "database file changed behind SQLite"
            case .restored: "database restored from this replica"
            case .forked: "generation continued by two agents"
            }
        }
    }

    /// The size of the header this walship writes (format version 2).
    public static let size = 256
    /// Enough bytes to decode a header of any supported version.
    public static let maximumSize = 256
    public static let magic: [UInt8] = Array("WSHP".utf8)
    /// The format version this walship writes.
    public static let formatVersion: UInt16 = 2
    /// The versions it reads.
    public static let supportedVersions: ClosedRange<UInt16> = 1...2

    /// The header size of format `version`.
    public static func size(ofVersion version: UInt16) -> Int { version == 1 ? 192 : 256 }

    /// The format version (1 for objects of walship 0.1; 2 for what this walship writes).
    public var version: UInt16 = ObjectHeader.formatVersion
    /// The header's size in bytes: the payload starts here.
    public var encodedSize: Int { Self.size(ofVersion: version) }

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
    /// Version 2: the identity of the database this replica holds (random, chosen when the
    /// replica's first generation started; all zeros in version 1). A database never
    /// replicates into a replica whose newest generation has another identity.
    public var databaseID: DatabaseID = .unknown
    /// Version 2: the database checksum (`PageChecksum`) of the state after `lastTxid` (a
    /// segment), or of the copy (a snapshot, whose state is at some txid between `fromTxid` and
    /// `usableTxid`); nil when unknown (version 1, or a segment sealed before the agent knew the
    /// generation's page hashes).
    public var databaseChecksum: UInt64?

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

    /// The header bytes of `version` (2 unless a test writes a version 1 object).
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: encodedSize)
        writer.append(Self.magic)
        writer.append(version)
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
        if version == 1 {
            writer.append([UInt8](repeating: 0, count: 12))
        } else {
            writer.append(databaseID.bytes)
            writer.append(databaseChecksum ?? 0)
            writer.append(UInt8(databaseChecksum == nil ? 0 : 1))
            writer.append([UInt8](repeating: 0, count: 51))
        }
        writer.append(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    static func fixed32(_ bytes: [UInt8]) -> [UInt8] {
        bytes.count == 32 ? bytes : Array((bytes + [UInt8](repeating: 0, count: 32)).prefix(32))
    }

    /// Decodes and checks a header of any supported version from the start of an object (at
    /// least `encodedSize` bytes); `key` names the object in errors (objectCorrupt).
    public static func decode(_ bytes: [UInt8], key: String) throws -> ObjectHeader {
        func corrupt(_ why: String) -> WalshipError {
            WalshipError(.objectCorrupt, "object '\(key)' is corrupt: \(why)")
        }
        guard bytes.count >= 6 else { throw corrupt("shorter than a header") }
        guard Array(bytes[0..<4]) == magic else { throw corrupt("not a walship object (bad magic)") }
        let version = UInt16(bytes[4]) << 8 | UInt16(bytes[5])
        guard supportedVersions.contains(version) else {
            throw corrupt(
                "format version \(version) is not supported by this walship (supports \(supportedVersions.lowerBound) to \(supportedVersions.upperBound))"
            )
        }
        let size = Self.size(ofVersion: version)
        guard bytes.count >= size else { throw corrupt("shorter than its \(size)-byte header") }
        let storedCRC = UInt32(
            bigEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: size - 4, as: UInt32.self) })
        guard CRC32C.checksum(bytes[0..<(size - 4)]) == storedCRC else { throw corrupt("header checksum mismatch") }
        var reader = ByteReader(bytes: Array(bytes[0..<size]))
        reader.skip(6)
        guard let kind = Kind(rawValue: reader.read()) else { throw corrupt("unknown object kind") }
        guard let codec = CompressionCodec(rawValue: reader.read()) else { throw corrupt("unknown codec") }
        let flags: UInt16 = reader.read()
        guard flags == 0 else { throw corrupt("unsupported flags \(flags) (encryption is not supported yet)") }
        let reason = GenerationReason(rawValue: reader.read()) ?? .none
        reader.skip(1)
        var header = ObjectHeader(
            kind: kind, codec: codec, reason: reason, pageSize: reader.read(), generation: reader.read(),
            firstTxid: reader.read(), lastTxid: reader.read(), firstMs: reader.read(), lastMs: reader.read())
        header.version = version
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
        if version >= 2 {
            header.databaseID = DatabaseID(bytes: reader.readBytes(16))
            let checksum: UInt64 = reader.read()
            let checksumKind: UInt8 = reader.read()
            switch checksumKind {
            case 0: header.databaseChecksum = nil
            case 1: header.databaseChecksum = checksum
            default: throw corrupt("unknown checksum kind \(checksumKind)")
            }
        }
        return header
    }
}

/// The identity of the database a replica holds, in every object header (format version 2)
/// and the agent's state directory, never inside the database: the first 16 bytes of the SHA-256
/// of the database's absolute path, as the agent replicates it. So it survives a lost state
/// directory and a restore in place (an init container restores to the path the agent then
/// replicates), while another database, even with the same file name, has another one and can
/// never write into this replica by accident (exit 14). A database restored to another path (a
/// disaster drill) takes on the identity it was restored from: `walship restore` records it in
/// that path's state directory (`RestoredMarker`). Objects of format version 1 carry none.
public struct DatabaseID: Sendable, Hashable, Codable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = bytes.count == 16 ? bytes : Array((bytes + [UInt8](repeating: 0, count: 16)).prefix(16))
    }

    /// Objects of format version 1 carry none.
    public static let unknown = DatabaseID(bytes: [UInt8](repeating: 0, count: 16))

    /// The identity of the database at `path`: its canonical path (symbolic links resolved, so
    /// a symlinked data directory is the same database).
    public static func forDatabase(atPath path: String) -> DatabaseID {
        var hasher = SHA256()
        hasher.update(data: Array("walship database identity\0".utf8))
        hasher.update(data: Array(FileSystem.canonical(path).utf8))
        return DatabaseID(bytes: Array(Array(hasher.finalize()).prefix(16)))
    }

    public init?(hex: String) {
        guard hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes: bytes)
    }

    public var isKnown: Bool { self != .unknown }
    public var description: String { Hex.string(bytes) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = DatabaseID(hex: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not 32 hex digits"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
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
