/// Whole-buffer and file-to-file conveniences over `Compressor` and `Decompressor`.
public enum Compression {
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

    /// Decompresses bytes in memory; more than `maxOutputBytes` of output is `objectCorrupt`.
    public static func decompress(_ bytes: [UInt8], codec: CompressionCodec, maxOutputBytes: Int) throws -> [UInt8] {
        let decompressor = try Decompressor(codec: codec)
        var result: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            try decompressor.update(raw) { chunk in
                guard result.count + chunk.count <= maxOutputBytes else {
                    throw WalshipError(
                        .objectCorrupt, "decompress \(codec.name) data: output exceeds \(maxOutputBytes) bytes")
                }
                result.append(contentsOf: chunk)
            }
        }
        try decompressor.finish()
        return result
    }

    /// Compresses the file at `source` into a new file at `destination` (which must not exist),
    /// streaming in 1 MiB reads. Does not fsync: the caller decides.
    @discardableResult
    public static func compressFile(at source: String, to destination: String, codec: CompressionCodec, level: Int32? = nil)
        throws -> (inputBytes: Int64, outputBytes: Int64)
    {
        let compressor = try Compressor(codec: codec, level: level)
        return try transform(source, destination) { input, output in
            if let input { try compressor.update(input, output: output) } else { try compressor.finish(output: output) }
        }
    }

    /// Decompresses the file at `source` into a new file at `destination` (which must not exist).
    @discardableResult
    public static func decompressFile(at source: String, to destination: String, codec: CompressionCodec)
        throws -> (inputBytes: Int64, outputBytes: Int64)
    {
        let decompressor = try Decompressor(codec: codec)
        return try transform(source, destination) { input, output in
            if let input { try decompressor.update(input, output: output) } else { try decompressor.finish() }
        }
    }

    /// Streams `source` through `step` into `destination`; `step` gets nil input at the end. A
    /// failure removes the partial destination.
    private static func transform(
        _ source: String, _ destination: String,
        _ step: (UnsafeRawBufferPointer?, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
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
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = try input.read(into: buffer)
                if count == 0 { break }
                inputBytes += Int64(count)
                try step(UnsafeRawBufferPointer(rebasing: buffer[..<count]), write)
            }
            try step(nil, write)
            try output.close()
            try input.close()
            return (inputBytes, outputBytes)
        } catch {
            try? output.close()
            try? FileSystem.removeIfPresent(destination)
            throw error
        }
    }
}
