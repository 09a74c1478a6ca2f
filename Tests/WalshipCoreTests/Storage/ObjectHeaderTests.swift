import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Object headers and replica keys")
struct ObjectHeaderTests {
    @Test("object headers round-trip, and any flipped byte is caught by the CRC")
    func objectHeaderRoundTrip() throws {
        let header = ObjectHeader(
            kind: .segment, codec: .zstd, pageSize: 4096, generation: 0x1a21_165d_ee22_915f, firstTxid: 7, lastTxid: 99,
            firstMs: 1_764_000_000_000, lastMs: 1_764_000_001_000, uncompressedSize: 12345, payloadSize: 678,
            payloadSHA256: Array(repeating: 0xAB, count: 32), predecessorGeneration: 0x1a21_165d_ee22_915f,
            predecessorTxid: 6, predecessorSHA256: Array(repeating: 0xCD, count: 32), databasePages: 42, walSalt1: 1,
            walSalt2: 2, walFrame: 300, walChecksum: .init(3, 4))
        let bytes = header.encoded()
        #expect(bytes.count == ObjectHeader.size)
        #expect(try ObjectHeader.decode(bytes, key: "k") == header)
        for position in stride(from: 0, to: ObjectHeader.size, by: 7) {
            var corrupt = bytes
            corrupt[position] ^= 0x10
            #expect(throws: WalshipError.self) { try ObjectHeader.decode(corrupt, key: "k") }
        }
    }

    /// The header of the golden files: every field set to a distinct value.
    static func goldenHeader(version: UInt16) -> ObjectHeader {
        var header = ObjectHeader(
            kind: .snapshot, codec: .gzip, reason: .firstStart, pageSize: 4096, generation: 0x0123_4567_89ab_cdef,
            firstTxid: 1, lastTxid: 2, firstMs: 3, lastMs: 4, uncompressedSize: 5, payloadSize: 6,
            payloadSHA256: Array(0..<32), predecessorGeneration: 7, predecessorTxid: 8,
            predecessorSHA256: Array(32..<64),
            databasePages: 9, walSalt1: 10, walSalt2: 11, walFrame: 12, walChecksum: .init(13, 14))
        header.version = version
        if version >= 2 {
            header.databaseID = DatabaseID(bytes: Array(64..<80))
            header.databaseChecksum = 0x0f0e_0d0c_0b0a_0908
        }
        return header
    }

    static func golden(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
        return try String(contentsOf: url, encoding: .utf8).filter { !$0.isWhitespace }
    }

    @Test("the object header encodings of format versions 1 and 2 are stable (golden files)", arguments: [1, 2])
    func objectHeaderGolden(version: UInt16) throws {
        let header = Self.goldenHeader(version: version)
        let expected = try Self.golden("object-header-v\(version).hex")
        #expect(Hex.string(header.encoded()) == expected)
        #expect(header.encoded().count == ObjectHeader.size(ofVersion: version))
        // Both decode, each with what its version carries.
        let decoded = try ObjectHeader.decode(Array(header.encoded()) + [1, 2, 3], key: "golden")
        #expect(decoded == header)
        #expect(decoded.databaseChecksum == (version == 1 ? nil : 0x0f0e_0d0c_0b0a_0908))
    }

    @Test("a header of an unknown format version, or too short for its version, is corrupt")
    func objectHeaderVersions() throws {
        var bytes = Self.goldenHeader(version: 2).encoded()
        #expect(throws: WalshipError.self) { try ObjectHeader.decode(Array(bytes[0..<200]), key: "k") }
        bytes[5] = 3
        #expect(throws: WalshipError.self) { try ObjectHeader.decode(bytes, key: "k") }
    }

    @Test("replica keys carry txids and times and parse back")
    func keysParse() {
        let layout = ReplicaLayout(prefix: "db/")
        let generation = GenerationID(0x1a21_165d_ee22_915f)
        let segment = layout.segmentKey(generation: generation, firstTxid: 1, lastTxid: 0x66, firstMs: 5, lastMs: 6)
        #expect(
            segment
                == "db/generations/1a21165dee22915f/segments/0000000000000001-0000000000000066-000000000005-000000000006.segment"
        )
        #expect(
            layout.parse(key: segment, size: 10)
                == .segment(
                    .init(
                        key: segment, generation: generation, firstTxid: 1, lastTxid: 0x66, firstMs: 5, lastMs: 6,
                        size: 10)))
        let snapshot = layout.snapshotKey(generation: generation, usableTxid: 9, fromTxid: 8, takenMs: 7)
        #expect(
            layout.parse(key: snapshot, size: 1)
                == .snapshot(
                    .init(key: snapshot, generation: generation, usableTxid: 9, fromTxid: 8, takenMs: 7, size: 1)))
        #expect(layout.parse(key: "db/generations/zz/segments/x.segment", size: 1) == nil)
        #expect(layout.parse(key: "other/generations/1a21165dee22915f/segments/x", size: 1) == nil)
    }
}
