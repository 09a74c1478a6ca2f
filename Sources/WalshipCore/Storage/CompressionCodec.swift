import CZstd

/// How an object's payload is compressed.
///
/// The raw value is stored in object headers, so cases are never renumbered. The names are the
/// configuration spelling and the file suffixes of the standard tools (`gzip -d`, `zstd -d` read
/// what walship writes).
public enum CompressionCodec: UInt8, Sendable, CaseIterable {
    case none = 0
    case gzip = 1
    case zstd = 2

    /// Parses the configuration name: `none`, `gzip` or `zstd` (any letter case).
    public init?(name: String) {
        switch name.lowercased() {
        case "none": self = .none
        case "gzip": self = .gzip
        case "zstd": self = .zstd
        default: return nil
        }
    }

    /// The configuration name, also used in log metadata and error messages.
    public var name: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .zstd: "zstd"
        }
    }

    /// The default level: fast levels, as measured in DESIGN.md section 3 (zstd -1 compresses a
    /// typical database 3.5x at 0.5 s per 227 MB; gzip -1 3.0x at 2.2 s).
    public var defaultLevel: Int32 {
        switch self {
        case .none: 0
        case .gzip: 1
        case .zstd: 1
        }
    }

    /// The levels `Compressor` accepts: zlib's 0 (stored) to 9, zstd's `ZSTD_minCLevel()` (the
    /// fastest negative level) to `ZSTD_maxCLevel()` (22); `none` ignores its level.
    public var levels: ClosedRange<Int32> {
        switch self {
        case .none: 0...0
        case .gzip: 0...9
        case .zstd: ZSTD_minCLevel()...ZSTD_maxCLevel()
        }
    }
}
