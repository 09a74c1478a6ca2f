/// How far walship has read one WAL: the salts of the WAL it is reading, the last frame it has
/// accepted (a published commit frame, or 0 before the first), and the cumulative checksum after
/// that frame (the WAL header's checksum at frame 0). Recorded in every segment header, so a
/// restarted agent can prove it continues the same WAL.
public struct WALCursor: Sendable, Equatable, Codable {
    public var salt1: UInt32
    public var salt2: UInt32
    public var frame: UInt32
    public var checksum: WALFormat.Checksum
    public var pageSize: Int
    public var bigEndianChecksum: Bool

    public init(
        salt1: UInt32, salt2: UInt32, frame: UInt32, checksum: WALFormat.Checksum, pageSize: Int,
        bigEndianChecksum: Bool
    ) {
        self.salt1 = salt1
        self.salt2 = salt2
        self.frame = frame
        self.checksum = checksum
        self.pageSize = pageSize
        self.bigEndianChecksum = bigEndianChecksum
    }

    /// The start of a WAL: before frame 1, seeded with the header's checksum.
    public init(header: WALFormat.Header) {
        self.init(
            salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum, pageSize: header.pageSize,
            bigEndianChecksum: header.bigEndianChecksum)
    }

    /// A cursor for a WAL that has no valid header yet (missing, empty after a TRUNCATE
    /// checkpoint): any header that appears is a new WAL.
    public static func noWAL(pageSize: Int) -> WALCursor {
        WALCursor(salt1: 0, salt2: 0, frame: 0, checksum: .zero, pageSize: pageSize, bigEndianChecksum: false)
    }

    func hasSalts(_ salt1: UInt32, _ salt2: UInt32) -> Bool {
        self.salt1 == salt1 && self.salt2 == salt2
    }
}
