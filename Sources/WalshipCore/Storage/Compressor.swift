import CZlib
import CZstd

/// A streaming compressor: feed input with `update`, end with `finish`; compressed bytes come out
/// through the `output` callback in chunks of at most 128 KiB, so memory stays bounded whatever
/// the input size. zstd frames carry a content checksum (`ZSTD_c_checksumFlag`), gzip members
/// their CRC-32; both are readable by the standard `zstd -d` and `gzip -d` tools.
public final class Compressor {
    public let codec: CompressionCodec
    private var zstdContext: OpaquePointer?
    private var zlibStream: UnsafeMutablePointer<z_stream>?
    private let buffer: UnsafeMutableRawBufferPointer
    private var finished = false

    public static let chunkSize = 128 * 1024

    public init(codec: CompressionCodec, level: Int32? = nil) throws {
        self.codec = codec
        buffer = .allocate(byteCount: Self.chunkSize, alignment: 16)
        let level = level ?? codec.defaultLevel
        switch codec {
        case .none:
            break
        case .zstd:
            guard let context = ZSTD_createCCtx() else {
                buffer.deallocate()
                throw WalshipError(.internal, "create zstd compressor: out of memory")
            }
            zstdContext = context
            try CompressionErrors.zstd(
                ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level), "set zstd level \(level)", corrupt: false)
            try CompressionErrors.zstd(
                ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "enable zstd checksums", corrupt: false)
        case .gzip:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // windowBits 15 + 16 asks zlib for a gzip wrapper (zlib.h, deflateInit2).
            let code = walship_deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
            if code != Z_OK {
                let error = CompressionErrors.zlib(code, stream.pointee, "create gzip compressor", corrupt: false)
                stream.deallocate()
                buffer.deallocate()
                throw error
            }
            zlibStream = stream
        }
    }

    deinit {
        if let zstdContext { ZSTD_freeCCtx(zstdContext) }
        if let zlibStream {
            deflateEnd(zlibStream)
            zlibStream.deallocate()
        }
        buffer.deallocate()
    }

    /// Compresses `input`, emitting whatever compressed bytes are ready.
    public func update(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { throw WalshipError(.internal, "compressor used after finish") }
        try run(input, end: false, output: output)
    }

    /// Ends the stream and emits the rest. The compressor cannot be used afterwards.
    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !finished else { throw WalshipError(.internal, "compressor finished twice") }
        finished = true
        try run(UnsafeRawBufferPointer(start: nil, count: 0), end: true, output: output)
    }

    private func run(_ input: UnsafeRawBufferPointer, end: Bool, output: (UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        switch codec {
        case .none:
            if input.count > 0 { try output(input) }
        case .zstd:
            var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
            // ZSTD_compressStream2 with ZSTD_e_end returns 0 once the frame is complete; with
            // ZSTD_e_continue, the input is consumed when pos == size.
            while true {
                var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let remaining = try CompressionErrors.zstd(
                    ZSTD_compressStream2(zstdContext, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue),
                    "zstd compress", corrupt: false)
                if outBuffer.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<outBuffer.pos])) }
                if end ? remaining == 0 : inBuffer.pos == inBuffer.size { break }
            }
        case .gzip:
            let stream = zlibStream!
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(input.count)
            // deflate with Z_FINISH returns Z_STREAM_END when done; with Z_NO_FLUSH, all input
            // is consumed once avail_out is not exhausted.
            while true {
                stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(buffer.count)
                let code = deflate(stream, end ? Z_FINISH : Z_NO_FLUSH)
                if code != Z_OK && code != Z_STREAM_END && code != Z_BUF_ERROR {
                    throw CompressionErrors.zlib(code, stream.pointee, "gzip compress", corrupt: false)
                }
                let produced = buffer.count - Int(stream.pointee.avail_out)
                if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced])) }
                if end ? code == Z_STREAM_END : stream.pointee.avail_out != 0 { break }
            }
        }
    }
}
