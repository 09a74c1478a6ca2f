import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Object files")
struct ObjectFileTests {
    /// Writes an object of `bytes` pseudo-random, partly repetitive bytes; returns its header.
    static func writeObject(at path: String, bytes: Int, codec: CompressionCodec) throws -> (ObjectHeader, [UInt8]) {
        var generator = SeededGenerator(seed: 7)
        var payload = [UInt8](repeating: 0, count: bytes)
        for index in stride(from: 0, to: bytes, by: 64) {
            let value = UInt8.random(in: 0...255, using: &generator)
            for offset in index..<min(bytes, index + 32) { payload[offset] = value }
        }
        let template = ObjectHeader(
            kind: .segment, codec: codec, pageSize: 4096, generation: 1, firstTxid: 1, lastTxid: 1, firstMs: 0,
            lastMs: 0, uncompressedSize: 0, payloadSize: 0, payloadSHA256: [], predecessorGeneration: 0,
            predecessorTxid: 0, predecessorSHA256: [], databasePages: 1, walSalt1: 0, walSalt2: 0, walFrame: 0,
            walChecksum: .init(0, 0))
        let header = try ObjectFile.write(to: path, header: template) { emit in
            try payload.withUnsafeBytes { raw in
                // Odd-sized pieces, so chunk boundaries fall anywhere.
                var offset = 0
                while offset < raw.count {
                    let end = min(raw.count, offset + 333_333)
                    try emit(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                    offset = end
                }
            }
        }
        return (header, payload)
    }

    @Test(
        "a pipelined read gives the same bytes as a plain read, and fails the same way on a corrupt byte",
        arguments: [CompressionCodec.zstd, .gzip, .none])
    func pipelinedReadMatchesPlainRead(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("object")
        let (_, payload) = try Self.writeObject(at: path, bytes: 9 << 20 + 12345, codec: codec)
        var plain: [UInt8] = []
        try ObjectFile.read(path: path, key: "k") { _, bytes in plain.append(contentsOf: bytes) }
        var pipelined: [UInt8] = []
        try ObjectFile.readPipelined(path: path, key: "k") { _, bytes in pipelined.append(contentsOf: bytes) }
        #expect(plain == payload)
        #expect(pipelined == payload)

        // One flipped byte near the end: the checksum (or the decompressor) names the key.
        let file = try LocalFile(path: path, flags: O_RDWR)
        let size = try file.size()
        var byte = try file.read(count: 1, at: size - 100)
        byte[0] ^= 0x40
        try byte.withUnsafeBytes { try file.write($0, at: size - 100) }
        try file.close()
        do {
            try ObjectFile.readPipelined(path: path, key: "segments/k") { _, _ in }
            Issue.record("a corrupt object was read")
        } catch let error as WalshipError {
            #expect(error.code == .objectCorrupt)
            #expect(error.message.contains("segments/k"), "\(error.message)")
        }
    }

    @Test("a consumer that fails stops the pipelined read without hanging, with the consumer's error")
    func consumerFailureStopsProducer() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("object")
        _ = try Self.writeObject(at: path, bytes: 12 << 20, codec: .zstd)
        var seen = 0
        do {
            try ObjectFile.readPipelined(path: path, key: "k") { _, bytes in
                seen += bytes.count
                if seen > 2 << 20 { throw WalshipError(.internal, "consumer gave up") }
            }
            Issue.record("the consumer's error was lost")
        } catch let error as WalshipError {
            #expect(error.message == "consumer gave up")
        }
    }
}
