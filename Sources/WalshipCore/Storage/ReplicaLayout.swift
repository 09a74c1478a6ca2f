/// A generation's identifier: 44 bits of its creation time in Unix milliseconds and 20 random
/// bits, written as 16 hex digits, so generations sort by creation time in listings.
public struct GenerationID: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// A new identifier for a generation created at `milliseconds`.
    public static func make(milliseconds: UInt64) -> GenerationID {
        GenerationID((milliseconds & 0xFFF_FFFF_FFFF) << 20 | UInt64.random(in: 0..<(1 << 20)))
    }

    public init?(hex: some StringProtocol) {
        guard hex.count == 16, let value = UInt64(hex, radix: 16) else { return nil }
        self.value = value
    }

    public var description: String { Hex.pad(value, 16) }
    public var createdMilliseconds: UInt64 { value >> 20 }

    public static func < (a: GenerationID, b: GenerationID) -> Bool { a.value < b.value }
}

/// Where a replica's objects live under its prefix (DESIGN.md section 4):
///
/// ```
/// <prefix>/generations/<gen>/snapshots/<usableTxid:016x>-<fromTxid:016x>-<takenMs:012x>.snapshot
/// <prefix>/generations/<gen>/segments/<firstTxid:016x>-<lastTxid:016x>-<firstMs:012x>-<lastMs:012x>.segment
/// ```
///
/// Keys carry what planning needs, so restore plans from one LIST. Keys are never reused.
public struct ReplicaLayout: Sendable, Equatable {
    /// Empty, or ends with "/".
    public let prefix: String

    public init(prefix: String) {
        var cleaned = prefix
        while cleaned.hasPrefix("/") { cleaned.removeFirst() }
        while cleaned.hasSuffix("/") { cleaned.removeLast() }
        self.prefix = cleaned.isEmpty ? "" : cleaned + "/"
    }

    public var generationsPrefix: String { "\(prefix)generations/" }

    public func generationPrefix(_ generation: GenerationID) -> String {
        "\(generationsPrefix)\(generation)/"
    }

    public func snapshotKey(generation: GenerationID, usableTxid: UInt64, fromTxid: UInt64, takenMs: UInt64) -> String {
        "\(generationPrefix(generation))snapshots/\(Hex.pad(usableTxid, 16))-\(Hex.pad(fromTxid, 16))-\(Hex.pad(takenMs, 12)).snapshot"
    }

    public func segmentKey(
        generation: GenerationID, firstTxid: UInt64, lastTxid: UInt64, firstMs: UInt64, lastMs: UInt64
    )
        -> String
    {
        "\(generationPrefix(generation))segments/\(Hex.pad(firstTxid, 16))-\(Hex.pad(lastTxid, 16))-\(Hex.pad(firstMs, 12))-\(Hex.pad(lastMs, 12)).segment"
    }

    /// What a listed key names.
    public enum Entry: Sendable, Equatable {
        case snapshot(SnapshotEntry)
        case segment(SegmentEntry)
    }

    public struct SnapshotEntry: Sendable, Equatable {
        public var key: String
        public var generation: GenerationID
        public var usableTxid: UInt64
        public var fromTxid: UInt64
        public var takenMs: UInt64
        public var size: Int64
    }

    public struct SegmentEntry: Sendable, Equatable {
        public var key: String
        public var generation: GenerationID
        public var firstTxid: UInt64
        public var lastTxid: UInt64
        public var firstMs: UInt64
        public var lastMs: UInt64
        public var size: Int64
    }

    /// Parses a listed key; nil for keys that are not walship objects of this layout.
    public func parse(key: String, size: Int64) -> Entry? {
        guard key.hasPrefix(generationsPrefix) else { return nil }
        let parts = key.dropFirst(generationsPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let generation = GenerationID(hex: parts[0]) else { return nil }
        let name = parts[2]
        if parts[1] == "snapshots", name.hasSuffix(".snapshot") {
            let fields = name.dropLast(".snapshot".count).split(separator: "-")
            guard fields.count == 3, fields[0].count == 16, fields[1].count == 16, fields[2].count == 12,
                let usable = UInt64(fields[0], radix: 16), let from = UInt64(fields[1], radix: 16),
                let taken = UInt64(fields[2], radix: 16)
            else { return nil }
            return .snapshot(
                SnapshotEntry(
                    key: key, generation: generation, usableTxid: usable, fromTxid: from, takenMs: taken, size: size))
        }
        if parts[1] == "segments", name.hasSuffix(".segment") {
            let fields = name.dropLast(".segment".count).split(separator: "-")
            guard fields.count == 4, fields[0].count == 16, fields[1].count == 16, fields[2].count == 12,
                fields[3].count == 12, let first = UInt64(fields[0], radix: 16),
                let last = UInt64(fields[1], radix: 16),
                let firstMs = UInt64(fields[2], radix: 16), let lastMs = UInt64(fields[3], radix: 16), first <= last
            else { return nil }
            return .segment(
                SegmentEntry(
                    key: key, generation: generation, firstTxid: first, lastTxid: last, firstMs: firstMs,
                    lastMs: lastMs,
                    size: size))
        }
        return nil
    }
}

/// Fixed-width lower-case hex.
public enum Hex {
    public static func pad(_ value: UInt64, _ width: Int) -> String {
        let text = String(value, radix: 16)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    public static func string(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension ReplicaLayout {
    /// The key of the object a header describes (keys are derived from headers, never stored).
    public func key(for header: ObjectHeader) -> String {
        let generation = GenerationID(header.generation)
        switch header.kind {
        case .snapshot:
            return snapshotKey(
                generation: generation, usableTxid: header.lastTxid, fromTxid: header.firstTxid, takenMs: header.firstMs
            )
        case .segment:
            return segmentKey(
                generation: generation, firstTxid: header.firstTxid, lastTxid: header.lastTxid, firstMs: header.firstMs,
                lastMs: header.lastMs)
        }
    }
}
