import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

/// Bytes that are half compressible text and half random, in a replayable way.
func mixedBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    let text = Array("INSERT INTO ledger VALUES (42, 'walship keeps every commit'); ".utf8)
    while bytes.count < count {
        if generator.next() % 2 == 0 {
            bytes.append(contentsOf: text.prefix(count - bytes.count))
        } else {
            for _ in 0..<min(64, count - bytes.count) { bytes.append(UInt8(truncatingIfNeeded: generator.next())) }
        }
    }
    return bytes
}

/// Feeds `input` to `update` in pieces of the given sizes, cycling.
func feed(_ input: [UInt8], pieces: [Int], _ update: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    var offset = 0
    var index = 0
    try input.withUnsafeBytes { raw in
        while offset < raw.count {
            let size = min(pieces[index % pieces.count], raw.count - offset)
            try update(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]))
            offset += size
            index += 1
        }
    }
}

@Suite("Compression")
struct CompressionTests {
    static let codecs: [CompressionCodec] = [.zstd, .gzip, .none]

    @Test("streams round-trip for empty, one-byte and 5 MB inputs fed in odd-sized pieces", arguments: codecs)
    func streamsRoundTrip(codec: CompressionCodec) throws {
        for input in [[], [7], mixedBytes(5_000_000, seed: 1)] as [[UInt8]] {
            let compressor = try Compressor(codec: codec)
            var compressed: [UInt8] = []
            try feed(input, pieces: [7, 4093, 65537]) { try compressor.update($0) { compressed += $0 } }
            try compressor.finish { compressed += $0 }
            let decompressor = try Decompressor(codec: codec)
            var output: [UInt8] = []
            try feed(compressed, pieces: [3, 1000, 70000]) { try decompressor.update($0) { output += $0 } }
            if !(codec != .none && compressed.isEmpty) { try decompressor.finish() }
            #expect(output == input)
            if input.count > 1000 && codec != .none { #expect(compressed.count < input.count * 3 / 4) }
        }
    }

    @Test("our output is read by the standard tool and the tool's output by us", arguments: [CompressionCodec.zstd, .gzip])
    func interoperatesWithStandardTools(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let tool = codec == .zstd ? "/usr/bin/zstd" : "/bin/gzip"
        let input = mixedBytes(1_000_000, seed: 2)

        // Ours -> the tool.
        let plain = directory.file("plain")
        _ = FileManager.default.createFile(atPath: plain, contents: Data(input))
        let ours = directory.file("ours.\(codec.name)")
        _ = FileManager.default.createFile(atPath: ours, contents: Data(try Compression.compress(input, codec: codec)))
        let decoded = try CommandRunner.run("/bin/sh", ["-c", "\(tool) -d -c '\(ours)' | cmp - '\(plain)'"])
        #expect(decoded.status == 0, "\(decoded.stdout) \(decoded.stderr)")

        // The tool -> ours, at a high level and as two concatenated frames or members.
        let level = codec == .zstd ? "-19" : "-9"
        let theirs = directory.file("theirs.\(codec.name)")
        let made = try CommandRunner.run(
            "/bin/sh", ["-c", "\(tool) \(level) -c '\(plain)' > '\(theirs)' && \(tool) -1 -c '\(plain)' >> '\(theirs)'"])
        #expect(made.status == 0, "\(made.stderr)")
        let compressed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: theirs)))
        let roundTrip = try Compression.decompress(compressed, codec: codec, maxOutputBytes: 10_000_000)
        #expect(roundTrip == input + input)
    }

    @Test("truncated input fails with objectCorrupt", arguments: [CompressionCodec.zstd, .gzip])
    func truncatedInputFails(codec: CompressionCodec) throws {
        let compressed = try Compression.compress(mixedBytes(200_000, seed: 3), codec: codec)
        for cut in [1, 5, compressed.count / 2] {
            #expect {
                _ = try Compression.decompress(Array(compressed.dropLast(cut)), codec: codec, maxOutputBytes: 1 << 30)
            } throws: { ($0 as? WalshipError)?.code == .objectCorrupt }
        }
    }

    @Test("a flipped byte is detected", arguments: [CompressionCodec.zstd, .gzip])
    func flippedByteIsDetected(codec: CompressionCodec) throws {
        let input = mixedBytes(200_000, seed: 4)
        let compressed = try Compression.compress(input, codec: codec)
        var failures = 0
        for position in stride(from: 20, to: compressed.count - 10, by: max(1, compressed.count / 25)) {
            var corrupt = compressed
            corrupt[position] ^= 0x20
            do {
                let output = try Compression.decompress(corrupt, codec: codec, maxOutputBytes: 1 << 30)
                #expect(output != input, "a flipped byte at \(position) went unnoticed")
                if output != input { failures += 1 }
            } catch let error as WalshipError {
                #expect(error.code == .objectCorrupt)
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    @Test("decompressing beyond maxOutputBytes fails")
    func outputLimit() throws {
        let compressed = try Compression.compress([UInt8](repeating: 0, count: 1_000_000), codec: .zstd)
        #expect { try Compression.decompress(compressed, codec: .zstd, maxOutputBytes: 999_999) } throws: {
            ($0 as? WalshipError)?.code == .objectCorrupt
        }
    }

    @Test("empty or garbage input is objectCorrupt, not a crash", arguments: [CompressionCodec.zstd, .gzip])
    func garbageFails(codec: CompressionCodec) {
        #expect { try Compression.decompress([], codec: codec, maxOutputBytes: 100) } throws: {
            ($0 as? WalshipError)?.code == .objectCorrupt
        }
        #expect { try Compression.decompress(Array("not compressed at all".utf8), codec: codec, maxOutputBytes: 100) } throws: {
            ($0 as? WalshipError)?.code == .objectCorrupt
        }
    }

    @Test("files round-trip through compressFile and decompressFile", arguments: [CompressionCodec.zstd, .gzip])
    func filesRoundTrip(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let input = mixedBytes(20_000_000, seed: 5)
        _ = FileManager.default.createFile(atPath: directory.file("in"), contents: Data(input))
        let packed = try Compression.compressFile(at: directory.file("in"), to: directory.file("packed"), codec: codec)
        #expect(packed.inputBytes == Int64(input.count))
        let unpacked = try Compression.decompressFile(at: directory.file("packed"), to: directory.file("out"), codec: codec)
        #expect(unpacked.outputBytes == Int64(input.count))
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.file("out"))) == Data(input))
        // The destination must not exist.
        #expect { try Compression.compressFile(at: directory.file("in"), to: directory.file("out"), codec: codec) } throws: {
            ($0 as? WalshipError)?.code == .localIO
        }
    }
}
