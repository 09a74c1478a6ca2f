import Crypto

/// Writes and reads walship objects as local files: the 192-byte `ObjectHeader`, then the
/// compressed payload. Memory stays bounded: payloads stream through the compressor and the
/// SHA-256 in chunks.
public enum ObjectFile {
    /// Writes a new object file at `path`: a placeholder header, the payload that `produce`
    /// emits (compressed with `header.codec`, hashed as stored), then the real header with the
    /// sizes and the payload SHA-256. Returns the final header. Does not fsync.
    public static func write(
        to path: String, header template: ObjectHeader, level: Int32? = nil,
        produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> ObjectHeader {
        let file = try LocalFile.create(path)
        do {
            try file.write([UInt8](repeating: 0, count: template.encodedSize))
            let compressor = try Compressor(codec: template.codec, level: level)
            var hasher = SHA256()
            var uncompressed: UInt64 = 0
            var stored: UInt64 = 0
            let sink: (UnsafeRawBufferPointer) throws -> Void = { chunk in
                hasher.update(bufferPointer: chunk)
                stored += UInt64(chunk.count)
                try file.write(chunk)
            }
            try produce { chunk in
                uncompressed += UInt64(chunk.count)
                try compressor.update(chunk, output: sink)
            }
            try compressor.finish(output: sink)
            var header = template
            header.uncompressedSize = uncompressed
            header.payloadSize = stored
            header.payloadSHA256 = Array(hasher.finalize())
            try header.encoded().withUnsafeBytes { try file.write($0, at: 0) }
            try file.close()
            return header
        } catch {
            try? file.close()
            try? FileSystem.removeIfPresent(path)
            throw error
        }
    }

    /// Reads and checks the header of an object file.
    public static func readHeader(path: String, key: String) throws -> ObjectHeader {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        return try ObjectHeader.decode(try file.read(count: ObjectHeader.maximumSize, at: 0), key: key)
    }

    /// Checks an object file's header, size and payload SHA-256 without decompressing it (a
    /// restore does this as each object arrives, on another thread than the one applying pages).
    @discardableResult
    public static func verify(path: String, key: String) throws -> ObjectHeader {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        let header = try readCheckedHeader(file, key: key)
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset = Int64(header.encodedSize)
        while true {
            let count = try file.read(into: buffer, at: offset)
            if count == 0 { break }
            offset += Int64(count)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        guard Array(hasher.finalize()) == header.payloadSHA256 else {
            throw WalshipError(.objectCorrupt, "object '\(key)' is corrupt: payload checksum mismatch")
        }
        return header
    }

    private static func readCheckedHeader(_ file: LocalFile, key: String) throws -> ObjectHeader {
        let header = try ObjectHeader.decode(try file.read(count: ObjectHeader.maximumSize, at: 0), key: key)
        let size = try file.size()
        guard UInt64(size) == UInt64(header.encodedSize) + header.payloadSize else {
            throw WalshipError(
                .objectCorrupt,
                "object '\(key)' is corrupt: \(size) bytes, its header says \(UInt64(header.encodedSize) + header.payloadSize)"
            )
        }
        return header
    }

    /// Reads an object file, checking its header, payload size and SHA-256, and streams the
    /// decompressed payload to `consume`. Everything `consume` saw must be discarded if this
    /// throws (the checksum is known only at the end). `verified` skips the SHA-256 of a file
    /// that `verify` has checked (and nobody has written since).
    @discardableResult
    public static func read(
        path: String, key: String, verified: Bool = false, expect: (ObjectHeader) throws -> Void = { _ in },
        consume: (ObjectHeader, UnsafeRawBufferPointer) throws -> Void
    ) throws -> ObjectHeader {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        let header = try readCheckedHeader(file, key: key)
        try expect(header)
        let decompressor = try Decompressor(codec: header.codec)
        var hasher = SHA256()
        var produced: UInt64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset = Int64(header.encodedSize)
        do {
            while true {
                let count = try file.read(into: buffer, at: offset)
                if count == 0 { break }
                offset += Int64(count)
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
                if !verified { hasher.update(bufferPointer: chunk) }
                try decompressor.update(chunk) { output in
                    produced += UInt64(output.count)
                    guard produced <= header.uncompressedSize else {
                        throw WalshipError(.objectCorrupt, "object '\(key)' is corrupt: more data than its header says")
                    }
                    try consume(header, output)
                }
            }
            if header.codec != .none || header.payloadSize > 0 { try decompressor.finish() }
        } catch let error as WalshipError where error.code == .objectCorrupt && !error.message.contains(key) {
            throw WalshipError(.objectCorrupt, "object '\(key)' is corrupt: \(error.message)")
        }
        guard verified || Array(hasher.finalize()) == header.payloadSHA256 else {
            throw WalshipError(.objectCorrupt, "object '\(key)' is corrupt: payload checksum mismatch")
        }
        guard produced == header.uncompressedSize else {
            throw WalshipError(
                .objectCorrupt,
                "object '\(key)' is corrupt: \(produced) bytes decompressed, header says \(header.uncompressedSize)")
        }
        return header
    }
}
