import CZlib

/// Whole-buffer and file-to-file conveniences over `Compressor` and `Decompressor`, and the limits
/// they share.
///
/// Everything here blocks on CPU and file IO: call it from `Blocking.run`, never directly on the
/// cooperative thread pool.
public enum Compression {
    /// The size of the output buffer each compressor and decompressor allocates once.
    static let outputChunkSize = 128 * 1024
    /// The size of each read in `compressFile` and `decompressFile`.
    static let fileReadSize = 1 << 20
    /// The largest zstd window, as a power of two, that walship writes and reads: 16 MiB. zstd
    /// levels above 19 default to larger windows when the input size is unknown, so `Compressor`
    /// caps them; `Decompressor` refuses larger frames instead of allocating their window.
    static let zstdWindowLogMax: Int32 = 24

    /// Compresses bytes in memory (for small payloads).
    public static func compress(_ bytes: [UInt8], codec: CompressionCodec, level: Int32? = nil) throws -> [UInt8] {
        let compressor = try Compressor(codec: codec, level: level)
        var result: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            try compressor.update(raw) { result.append(contentsOf: $0) }
        }
        try compressor.finish { result.append(contentsOf: $0) }
        return result
    }

    /// Decompresses bytes in memory. Output beyond `maxOutputBytes` is `objectCorrupt`: it stops a
    /// small object from expanding without bound.
    public static func decompress(_ bytes: [UInt8], codec: CompressionCodec, maxOutputBytes: Int) throws -> [UInt8] {
        let decompressor = try Decompressor(codec: codec)
        var result: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            try decompressor.update(raw) { chunk in
                guard chunk.count <= maxOutputBytes - result.count else {
                    throw WalshipError(
                        .objectCorrupt,
                        "decompress \(codec.name) data: the output exceeds the limit of \(maxOutputBytes) bytes")
                }
                result.append(contentsOf: chunk)
            }
        }
        try decompressor.finish()
        return result
    }

    /// Compresses the file at `source` into a new file at `destination`, which must not exist,
    /// reading 1 MiB at a time. Does not fsync: the caller decides. A failure removes the partial
    /// destination.
    @discardableResult
    public static func compressFile(
        at source: String, to destination: String, codec: CompressionCodec, level: Int32? = nil
    ) throws -> (inputBytes: Int64, outputBytes: Int64) {
        let compressor = try Compressor(codec: codec, level: level)
        return try transform(
            source, destination,
            update: { input, output in try compressor.update(input, output: output) },
            finish: { output in try compressor.finish(output: output) })
    }

    /// Decompresses the file at `source` into a new file at `destination`, which must not exist,
    /// reading 1 MiB at a time. Does not fsync. A failure removes the partial destination.
    @discardableResult
    public static func decompressFile(
        at source: String, to destination: String, codec: CompressionCodec
    ) throws -> (inputBytes: Int64, outputBytes: Int64) {
        let decompressor = try Decompressor(codec: codec)
        return try transform(
            source, destination,
            update: { input, output in try decompressor.update(input, output: output) },
            finish: { _ in try decompressor.finish() })
    }

    /// Streams `source` through `update`, then `finish`, into `destination`.
    private static func transform(
        _ source: String, _ destination: String,
        update: (UnsafeRawBufferPointer, (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
        finish: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> (inputBytes: Int64, outputBytes: Int64) {
        let input = try LocalFile.openForReading(source)
        let output = try LocalFile.create(destination)
        do {
            var inputBytes: Int64 = 0
            var outputBytes: Int64 = 0
            let write: (UnsafeRawBufferPointer) throws -> Void = { chunk in
                try output.write(chunk)
                outputBytes += Int64(chunk.count)
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: fileReadSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = try input.read(into: buffer)
                if count == 0 { break }
                inputBytes += Int64(count)
                try update(UnsafeRawBufferPointer(rebasing: buffer[..<count]), write)
            }
            try finish(write)
            try output.close()
            try input.close()
            return (inputBytes, outputBytes)
        } catch {
            try? output.close()
            try? FileSystem.removeIfPresent(destination)
            throw error
        }
    }

    /// Calls `body` with consecutive pieces of `input` that fit zlib's 32-bit `avail_in`, and
    /// whether the piece is the last; an empty input is one empty, last piece.
    static func forEachZlibPiece(
        of input: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, _ isLast: Bool) throws -> Void
    ) rethrows {
        let limit = Int(uInt.max)
        var start = 0
        repeat {
            let end = start + min(limit, input.count - start)
            try body(UnsafeRawBufferPointer(rebasing: input[start..<end]), end == input.count)
            start = end
        } while start < input.count
    }
}
