import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Compression")
struct CompressionTests {
    static let codecs: [CompressionCodec] = [.zstd, .gzip, .none]
    static let compressingCodecs: [CompressionCodec] = [.zstd, .gzip]

    @Test("streams round-trip empty, one-byte and 5 MB inputs fed in odd-sized pieces", arguments: codecs)
    func streamsRoundTrip(codec: CompressionCodec) throws {
        for input in [[], [7], mixedBytes(5_000_000, seed: 1)] as [[UInt8]] {
            let compressed = try compressInPieces(input, codec: codec, pieces: [7, 4093, 65537])
            let output = try decompressInPieces(compressed, codec: codec, pieces: [3, 1000, 70000])
            #expect(output == input)
            if input.count > 1000 && codec != .none { #expect(compressed.count < input.count * 3 / 4) }
        }
    }

    @Test("output that fills the 128 KiB buffer exactly at the end of a frame finishes cleanly", arguments: codecs)
    func outputEndingOnTheBufferBoundaryFinishes(codec: CompressionCodec) throws {
        for size in [128 * 1024, 256 * 1024] {
            let input = mixedBytes(size, seed: 6)
            let compressed = try Compression.compress(input, codec: codec)
            #expect(try Compression.decompress(compressed, codec: codec, maxOutputBytes: size) == input)
            #expect(
                try Compression.decompress(compressed + compressed, codec: codec, maxOutputBytes: 2 * size) == input
                    + input)
        }
    }

    @Test("zstd -d and gzip -d read what we write", arguments: compressingCodecs)
    func standardToolReadsOurOutput(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let input = mixedBytes(1_000_000, seed: 2)
        let ours = directory.file("ours")
        try Data(try Compression.compress(input, codec: codec)).write(to: URL(fileURLWithPath: ours))
        let decoded = directory.file("decoded")
        try runTool(Self.tool(codec), ["-d", "-c", ours], stdout: decoded)
        #expect(try readBytes(decoded) == input)
    }

    @Test("we read zstd -19 and gzip -9 output, and two concatenated frames or members", arguments: compressingCodecs)
    func weReadTheStandardToolsOutput(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let input = mixedBytes(1_000_000, seed: 2)
        let plain = directory.file("plain")
        try Data(input).write(to: URL(fileURLWithPath: plain))
        let (high, fast) = (directory.file("high"), directory.file("fast"))
        try runTool(Self.tool(codec), [codec == .zstd ? "-19" : "-9", "-c", plain], stdout: high)
        try runTool(Self.tool(codec), ["-1", "-c", plain], stdout: fast)

        #expect(try Compression.decompress(readBytes(high), codec: codec, maxOutputBytes: input.count) == input)
        let concatenated = try readBytes(high) + readBytes(fast)
        let output = try decompressInPieces(concatenated, codec: codec, pieces: [4093, 65537])
        #expect(output == input + input)
    }

    @Test("truncated input fails with objectCorrupt in update or finish", arguments: compressingCodecs)
    func truncatedInputFails(codec: CompressionCodec) throws {
        let compressed = try Compression.compress(mixedBytes(200_000, seed: 3), codec: codec)
        for cut in [1, 4, 5, compressed.count / 2, compressed.count - 1] {
            let error = #expect(throws: WalshipError.self) {
                _ = try decompressInPieces(Array(compressed.dropLast(cut)), codec: codec, pieces: [1000])
            }
            #expect(error?.code == .objectCorrupt, "cut \(cut): \(String(describing: error))")
        }
    }

    @Test("a flipped byte anywhere after the header fails with objectCorrupt", arguments: compressingCodecs)
    func flippedByteIsDetected(codec: CompressionCodec) throws {
        let input = mixedBytes(200_000, seed: 4)
        let compressed = try Compression.compress(input, codec: codec)
        // zstd: magic, frame header descriptor, window descriptor; a flipped window size may
        // still decode. gzip: RFC 1952's fixed 10-byte header, which no checksum covers.
        let headerSize = codec == .zstd ? 6 : 10
        let positions = Array(stride(from: headerSize, to: compressed.count, by: compressed.count / 40))
        for position in positions + [compressed.count - 1] {
            var corrupt = compressed
            corrupt[position] ^= 0x20
            let error = #expect(throws: WalshipError.self, "a flipped byte at \(position) went unnoticed") {
                _ = try Compression.decompress(corrupt, codec: codec, maxOutputBytes: 1 << 30)
            }
            #expect(error?.code == .objectCorrupt, "position \(position): \(String(describing: error))")
        }
    }

    @Test("a flipped byte in a stored zstd block fails the frame checksum")
    func zstdChecksumCatchesFlipsInStoredBlocks() throws {
        // Random bytes do not compress, so zstd stores them as a raw block; only the content
        // checksum (ZSTD_c_checksumFlag) can notice a change inside one.
        var generator = SeededGenerator(seed: 7)
        let input = (0..<10_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var corrupt = try Compression.compress(input, codec: .zstd)
        corrupt[corrupt.count / 2] ^= 0x01
        let error = #expect(throws: WalshipError.self) {
            _ = try Compression.decompress(corrupt, codec: .zstd, maxOutputBytes: 1 << 20)
        }
        #expect(error?.code == .objectCorrupt)
        #expect(error?.message.contains("checksum") == true, "\(String(describing: error))")
    }

    @Test("decompressing more than maxOutputBytes fails with objectCorrupt", arguments: codecs)
    func outputLimitIsEnforced(codec: CompressionCodec) throws {
        let input = [UInt8](repeating: 0, count: 1_000_000)
        let compressed = try Compression.compress(input, codec: codec)
        #expect(try Compression.decompress(compressed, codec: codec, maxOutputBytes: input.count) == input)
        let error = #expect(throws: WalshipError.self) {
            try Compression.decompress(compressed, codec: codec, maxOutputBytes: input.count - 1)
        }
        #expect(error?.code == .objectCorrupt)
    }

    @Test("empty input, garbage and bytes after the last member are objectCorrupt", arguments: compressingCodecs)
    func garbageFails(codec: CompressionCodec) throws {
        let valid = try Compression.compress([1, 2, 3], codec: codec)
        let garbage = Array("not compressed at all".utf8)
        for input in [[], garbage, valid + garbage, valid + [0], valid + [0, 0, 0, 0, 0, 0, 0, 0]] as [[UInt8]] {
            let error = #expect(throws: WalshipError.self, "\(input.count) bytes were accepted") {
                _ = try decompressInPieces(input, codec: codec, pieces: [valid.count, 1])
            }
            #expect(error?.code == .objectCorrupt, "\(String(describing: error))")
            #expect(error?.message.hasPrefix("decompress \(codec.name) data: ") == true)
        }
    }

    @Test("a zstd frame that needs a window above 16 MiB is refused with a clear error")
    func zstdWindowAboveLimitIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let plain = directory.file("plain")
        try Data(mixedBytes(100_000, seed: 8)).write(to: URL(fileURLWithPath: plain))
        // Reading standard input hides the size, so the frame declares the full 32 MiB window.
        let large = directory.file("large")
        try runTool("/usr/bin/zstd", ["-q", "--zstd=wlog=25", "-c"], stdin: plain, stdout: large)
        let error = #expect(throws: WalshipError.self) {
            _ = try Compression.decompress(readBytes(large), codec: .zstd, maxOutputBytes: 1 << 20)
        }
        #expect(error?.code == .objectCorrupt)
        #expect(error?.message.contains("16 MiB") == true, "\(String(describing: error))")
    }

    @Test("zstd levels 20 to 22 write frames we can read back", arguments: [Int32(20), 22])
    func highZstdLevelsStayReadable(level: Int32) throws {
        let input = mixedBytes(300_000, seed: 9)
        let compressed = try compressInPieces(input, codec: .zstd, level: level, pieces: [65536])
        #expect(try Compression.decompress(compressed, codec: .zstd, maxOutputBytes: input.count) == input)
    }

    @Test(
        "a level outside the codec's range is a usage error",
        arguments: [(CompressionCodec.gzip, Int32(42)), (.gzip, -1), (.zstd, 99)])
    func invalidLevelIsRefused(codec: CompressionCodec, level: Int32) {
        let error = #expect(throws: WalshipError.self) { _ = try Compressor(codec: codec, level: level) }
        #expect(error?.code == .usage)
    }

    @Test("streams refuse use after finish, or after a failure, with an internal error")
    func useAfterFinishOrFailureIsRefused() throws {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let compressor = try Compressor(codec: .zstd)
        try compressor.finish { _ in }
        let updateAfterFinish = #expect(throws: WalshipError.self) { try compressor.update(empty) { _ in } }
        #expect(updateAfterFinish?.code == .internal)
        let finishTwice = #expect(throws: WalshipError.self) { try compressor.finish { _ in } }
        #expect(finishTwice?.code == .internal)

        // A throwing output callback leaves the stream half-consumed; a retry must not continue it.
        struct WriteFailed: Error {}
        let failing = try Compressor(codec: .gzip)
        #expect(throws: WriteFailed.self) { try failing.finish { _ in throw WriteFailed() } }
        let retry = #expect(throws: WalshipError.self) { try failing.finish { _ in } }
        #expect(retry?.code == .internal)

        let member = try Compression.compress([1], codec: .gzip)
        let decompressor = try Decompressor(codec: .gzip)
        try member.withUnsafeBytes { try decompressor.update($0) { _ in } }
        try decompressor.finish()
        let afterFinish = #expect(throws: WalshipError.self) {
            try member.withUnsafeBytes { try decompressor.update($0) { _ in } }
        }
        #expect(afterFinish?.code == .internal)
    }

    @Test("files round-trip through compressFile and decompressFile", arguments: codecs)
    func filesRoundTrip(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let input = mixedBytes(20_000_000, seed: 5)
        let (plain, packed, unpacked) = (directory.file("plain"), directory.file("packed"), directory.file("unpacked"))
        try Data(input).write(to: URL(fileURLWithPath: plain))

        let compressed = try Compression.compressFile(at: plain, to: packed, codec: codec)
        #expect(compressed.inputBytes == Int64(input.count))
        #expect(compressed.outputBytes == Int64(try readBytes(packed).count))
        let decompressed = try Compression.decompressFile(at: packed, to: unpacked, codec: codec)
        #expect(decompressed == (compressed.outputBytes, Int64(input.count)))
        #expect(try readBytes(unpacked) == input)

        let error = #expect(throws: WalshipError.self, "an existing destination was overwritten") {
            try Compression.compressFile(at: plain, to: unpacked, codec: codec)
        }
        #expect(error?.code == .localIO)
    }

    @Test("decompressFile of a truncated file fails and leaves no partial output", arguments: compressingCodecs)
    func failedDecompressFileRemovesItsOutput(codec: CompressionCodec) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let truncated = try Compression.compress(mixedBytes(3_000_000, seed: 10), codec: codec).dropLast(3)
        try Data(truncated).write(to: URL(fileURLWithPath: directory.file("truncated")))
        let error = #expect(throws: WalshipError.self) {
            try Compression.decompressFile(at: directory.file("truncated"), to: directory.file("out"), codec: codec)
        }
        #expect(error?.code == .objectCorrupt)
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
    }

    // MARK: Helpers

    static func tool(_ codec: CompressionCodec) -> String {
        codec == .zstd ? "/usr/bin/zstd" : "/bin/gzip"
    }
}

/// Bytes that are half compressible text and half random, in a replayable way.
private func mixedBytes(_ count: Int, seed: UInt64) -> [UInt8] {
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

/// Calls `body` with consecutive pieces of `input` of the given sizes, cycling through them.
private func forEachPiece(
    of input: [UInt8], sizes: [Int], _ body: (UnsafeRawBufferPointer) throws -> Void
) rethrows {
    try input.withUnsafeBytes { raw in
        var offset = 0
        var index = 0
        while offset < raw.count {
            let size = min(sizes[index % sizes.count], raw.count - offset)
            try body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]))
            offset += size
            index += 1
        }
    }
}

private func compressInPieces(
    _ input: [UInt8], codec: CompressionCodec, level: Int32? = nil, pieces: [Int]
) throws -> [UInt8] {
    let compressor = try Compressor(codec: codec, level: level)
    var output: [UInt8] = []
    try forEachPiece(of: input, sizes: pieces) { try compressor.update($0) { output += $0 } }
    try compressor.finish { output += $0 }
    return output
}

private func decompressInPieces(_ input: [UInt8], codec: CompressionCodec, pieces: [Int]) throws -> [UInt8] {
    let decompressor = try Decompressor(codec: codec)
    var output: [UInt8] = []
    try forEachPiece(of: input, sizes: pieces) { try decompressor.update($0) { output += $0 } }
    try decompressor.finish()
    return output
}

private func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Runs a tool with Foundation's `Process`, standard input and output connected to files, and
/// fails with its standard error when it exits non-zero.
private func runTool(_ executable: String, _ arguments: [String], stdin: String? = nil, stdout: String) throws {
    let errorPath = stdout + ".stderr"
    _ = FileManager.default.createFile(atPath: stdout, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    let outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
    let errorHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    defer {
        try? outputHandle.close()
        try? errorHandle.close()
        try? FileManager.default.removeItem(atPath: errorPath)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput =
        try stdin.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
    process.standardOutput = outputHandle
    process.standardError = errorHandle
    try process.run()
    process.waitUntilExit()
    if process.terminationStatus != 0 {
        let message = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        throw WalshipError(.internal, "\(executable) \(arguments) exited with \(process.terminationStatus): \(message)")
    }
}
