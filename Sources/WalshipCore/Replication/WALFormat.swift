/// The SQLite WAL file format (sqlite.org/fileformat2.html#walformat): a 32-byte header, then
/// frames of a 24-byte header and one page. All header fields are big-endian. Checksums are
/// cumulative over the header and every frame, computed on 32-bit words that are big-endian
/// when the magic number is 0x377f0683 and little-endian when it is 0x377f0682.
public enum WALFormat {
    public static let headerSize = 32
    public static let frameHeaderSize = 24
    static let magicLittleEndian: UInt32 = 0x377f_0682
    static let magicBigEndian: UInt32 = 0x377f_0683

    /// A SQLite page size: a power of two from 512 to 65536.
    public static func isValidPageSize(_ size: Int) -> Bool {
        size >= 512 && size <= 65536 && size & (size - 1) == 0
    }

    /// A cumulative checksum pair.
    public struct Checksum: Sendable, Equatable, Hashable, Codable {
        public var first: UInt32
        public var second: UInt32

        public init(_ first: UInt32, _ second: UInt32) {
            self.first = first
            self.second = second
        }

        public static let zero = Checksum(0, 0)
    }

    /// The WAL file header.
    public struct Header: Sendable, Equatable {
        public var bigEndianChecksum: Bool
        public var version: UInt32
        public var pageSize: Int
        public var checkpointSequence: UInt32
        /// The salts as the raw bytes 16-23 of the file (compared byte for byte with `-shm`).
        public var salt1: UInt32
        public var salt2: UInt32
        public var checksum: Checksum

        /// Parses and verifies a header; nil when the bytes are not a valid WAL header (no
        /// magic, a bad page size, or a checksum mismatch: a header being rewritten).
        public static func parse(_ bytes: UnsafeRawBufferPointer) -> Header? {
            guard bytes.count >= headerSize else { return nil }
            let magic = bytes.bigEndianUInt32(at: 0)
            guard magic == magicLittleEndian || magic == magicBigEndian else { return nil }
            let bigEndian = magic == magicBigEndian
            let rawPageSize = Int(bytes.bigEndianUInt32(at: 8))
            let pageSize = rawPageSize == 1 ? 65536 : rawPageSize
            guard isValidPageSize(pageSize) else { return nil }
            let stored = Checksum(bytes.bigEndianUInt32(at: 24), bytes.bigEndianUInt32(at: 28))
            let computed = WALFormat.checksum(
                UnsafeRawBufferPointer(rebasing: bytes[0..<24]), bigEndian: bigEndian, seed: .zero)
            guard stored == computed else { return nil }
            return Header(
                bigEndianChecksum: bigEndian, version: bytes.bigEndianUInt32(at: 4), pageSize: pageSize,
                checkpointSequence: bytes.bigEndianUInt32(at: 12), salt1: bytes.bigEndianUInt32(at: 16),
                salt2: bytes.bigEndianUInt32(at: 20), checksum: stored)
        }
    }

    /// A frame header.
    public struct FrameHeader: Sendable, Equatable {
        public var pageNumber: UInt32
        /// For a commit frame, the database size in pages after the commit; 0 otherwise.
        public var databaseSize: UInt32
        public var salt1: UInt32
        public var salt2: UInt32
        public var checksum: Checksum

        public var isCommit: Bool { databaseSize != 0 }

        public static func parse(_ bytes: UnsafeRawBufferPointer) -> FrameHeader {
            FrameHeader(
                pageNumber: bytes.bigEndianUInt32(at: 0), databaseSize: bytes.bigEndianUInt32(at: 4),
                salt1: bytes.bigEndianUInt32(at: 8), salt2: bytes.bigEndianUInt32(at: 12),
                checksum: Checksum(bytes.bigEndianUInt32(at: 16), bytes.bigEndianUInt32(at: 20)))
        }
    }

    /// The byte offset of frame `index` (1-based) in a WAL with `pageSize` pages.
    public static func frameOffset(_ index: UInt32, pageSize: Int) -> Int64 {
        Int64(headerSize) + Int64(index - 1) * Int64(frameHeaderSize + pageSize)
    }

    /// SQLite's WAL checksum (walChecksumBytes): for each pair of 32-bit words x0, x1,
    /// s0 += x0 + s1; s1 += x1 + s0, starting from `seed`. `bytes.count` is a multiple of 8.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, bigEndian: Bool, seed: Checksum) -> Checksum {
        var s0 = seed.first
        var s1 = seed.second
        let count = bytes.count / 8
        guard count > 0, let base = bytes.baseAddress else { return seed }
        if bigEndian {
            for pair in 0..<count {
                let x0 = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: pair * 8, as: UInt32.self))
                let x1 = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: pair * 8 + 4, as: UInt32.self))
                s0 = s0 &+ x0 &+ s1
                s1 = s1 &+ x1 &+ s0
            }
        } else {
            for pair in 0..<count {
                let x0 = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: pair * 8, as: UInt32.self))
                let x1 = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: pair * 8 + 4, as: UInt32.self))
                s0 = s0 &+ x0 &+ s1
                s1 = s1 &+ x1 &+ s0
            }
        }
        return Checksum(s0, s1)
    }

    /// The cumulative checksum of a frame: its first 8 header bytes, then its page, seeded with
    /// the previous frame's checksum (the WAL header's for frame 1).
    public static func frameChecksum(frame: UnsafeRawBufferPointer, bigEndian: Bool, seed: Checksum) -> Checksum {
        let afterHeader = checksum(UnsafeRawBufferPointer(rebasing: frame[0..<8]), bigEndian: bigEndian, seed: seed)
        return checksum(
            UnsafeRawBufferPointer(rebasing: frame[frameHeaderSize..<frame.count]), bigEndian: bigEndian,
            seed: afterHeader)
    }
}

extension UnsafeRawBufferPointer {
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func nativeUInt32(at offset: Int) -> UInt32 {
        loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }
}
