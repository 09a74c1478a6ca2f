import CZlib
import CZstd

/// A streaming decompressor for the codecs of `CompressionCodec`. Accepts concatenated zstd
/// frames and multi-member gzip streams, as `zstd -d` and `gzip -d` do. Corrupt or truncated
/// input is `WalshipError.Code.objectCorrupt`. Memory is bounded: 128 KiB of output at a time,
/// and zstd frames that need a window above 16 MiB are refused (`ZSTD_d_windowLogMax` 24).
public final class Decompressor {
    public let codec: CompressionCodec
    private var zstdContext: OpaquePointer?
    private var zlibStream: UnsafeMutablePointer<z_stream>?
    private let buffer: UnsafeMutableRawBufferPointer
    /// zstd: the last `ZSTD_decompressStream` hint (0 at a frame boundary). gzip: whether the
    /// current member has ended.
    private var atBoundary = true
    private var sawInput = false
    private var finished = false

    public init(codec: CompressionCodec) throws {
        self.codec = codec
        buffer = .allocate(byteCount: Compressor.chunkSize, alignment: 16)
        switch codec {
        case .none:
            break
        case .zstd:
            guard let context = ZSTD_createDCtx() else {
                buffer.deallocate()
                throw WalshipError(.internal, "create zstd decompressor: out of memory")
            }
            zstdContext = context
            try CompressionErrors.zstd(
                ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, 24), "limit zstd window", corrupt: false)
        case .gzip:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let code = walship_inflateInit2(stream, 15 + 16)
            if code != Z_OK {
                let error = CompressionErrors.zlib(code, stream.pointee, "create gzip decompressor", corrupt: false)
                stream.deallocate()
                buffer.deallocate()
                throw error
            }
            zlibStream = stream
        }
    }

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
        if let zlibStream {
            inflateEnd(zlibStream)
            zlibStream.deallocate()
        }
        buffer.deallocate()
    }

    /// Decompresses `input`, emitting whatever decompressed bytes are ready.
    public func update(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { throw WalshipError(.internal, "decompressor used after finish") }
        guard input.count > 0 else { return }
        sawInput = true
        switch codec {
        case .none:
            try output(input)
        case .zstd:
            var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            // ZSTD_decompressStream returns 0 when a frame is complete, else a hint > 0; it has
            // consumed all input once pos == size and the output buffer was not filled.
            while true {
                var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let hint = try CompressionErrors.zstd(
                    ZSTD_decompressStream(zstdContext, &outBuffer, &inBuffer), "decompress zstd data", corrupt: true)
                atBoundary = hint == 0
                if outBuffer.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<outBuffer.pos])) }
                if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size { break }
            }
        case .gzip:
            let stream = zlibStream!
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            while stream.pointee.avail_in > 0 || !atBoundary {
                stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(buffer.count)
                let code = inflate(stream, Z_NO_FLUSH)
                let produced = buffer.count - Int(stream.pointee.avail_out)
                if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced])) }
                switch code {
                case Z_STREAM_END:
                    // One gzip member ended; another may follow (multi-member files).
                    atBoundary = true
                    if stream.pointee.avail_in > 0 {
                        let reset = inflateReset(stream)
                        if reset != Z_OK { throw CompressionErrors.zlib(reset, stream.pointee, "decompress gzip data", corrupt: true) }
                        atBoundary = false
                    }
                case Z_OK:
                    atBoundary = false
                case Z_BUF_ERROR:
                    // No progress possible: all input consumed mid-member.
                    atBoundary = false
                    if stream.pointee.avail_in == 0 { return }
                default:
                    throw CompressionErrors.zlib(code, stream.pointee, "decompress gzip data", corrupt: true)
                }
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { break }
            }
        }
    }

    /// Checks that the input ended at the end of a complete frame or member.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        if codec != .none && sawInput && !atBoundary {
            throw WalshipError(.objectCorrupt, "decompress \(codec.name) data: the input is truncated")
        }
        if codec != .none && !sawInput {
            throw WalshipError(.objectCorrupt, "decompress \(codec.name) data: the input is empty")
        }
    }
}
