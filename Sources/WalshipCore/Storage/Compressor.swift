import CZlib
import CZstd

/// A streaming compressor: feed input with `update`, end the stream with `finish`.
///
/// Compressed bytes come out through the `output` callback in chunks of at most 128 KiB from one
/// buffer allocated at creation, so memory stays bounded whatever the input size. The output is
/// one zstd frame with a content checksum (`ZSTD_c_checksumFlag`) or one gzip member with its
/// CRC-32, readable by `zstd -d` and `gzip -d`.
///
/// Invariants: after `finish`, or after any call threw (the stream may then have consumed part of
/// the input), every call throws `.internal`. Not thread-safe: one caller at a time.
public final class Compressor {
    public let codec: CompressionCodec
    private let buffer: UnsafeMutableRawBufferPointer
    private var zstdContext: OpaquePointer?
    private var zlibStream: UnsafeMutablePointer<z_stream>?
    private var state: CodecStreamState

    /// Creates a compressor at `level` (default `codec.defaultLevel`); a level outside
    /// `codec.levels` is a `.usage` error.
    public init(codec: CompressionCodec, level: Int32? = nil) throws {
        let level = level ?? codec.defaultLevel
        if codec != .none && !codec.levels.contains(level) {
            throw WalshipError(
                .usage, "compression level \(level) is not valid for \(codec.name): use \(codec.levels)")
        }
        self.codec = codec
        state = CodecStreamState(operation: "compress \(codec.name) data")
        // From here on every stored property is set, so a throw runs deinit, which frees what
        // exists: no manual cleanup before throwing.
        buffer = .allocate(byteCount: Compression.outputChunkSize, alignment: 16)
        switch codec {
        case .none:
            break
        case .zstd:
            try startZstd(level: level)
        case .gzip:
            try startGzip(level: level)
        }
    }

    deinit {
        if let zstdContext { ZSTD_freeCCtx(zstdContext) }
        if let zlibStream { Compression.freeZlibStream(zlibStream, end: deflateEnd) }
        buffer.deallocate()
    }

    private func startZstd(level: Int32) throws {
        guard let context = ZSTD_createCCtx() else {
            throw WalshipError(.internal, "create zstd compressor: out of memory")
        }
        zstdContext = context
        try Compression.zstdCheck(
            ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level), "set zstd level \(level)",
            dataError: .internal)
        try Compression.zstdCheck(
            ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "enable zstd checksums", dataError: .internal)
        // Levels 20 to 22 pick windows of 32 to 128 MiB when the input size is unknown (zstd.h,
        // ZSTD_c_windowLog: larger windows must be allowed at decompression), which our own
        // Decompressor refuses. Levels up to 19 stay at 8 MiB or less and keep zstd's choice.
        if level > 19 {
            try Compression.zstdCheck(
                ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, Compression.zstdWindowLogMax),
                "limit zstd window", dataError: .internal)
        }
    }

    private func startGzip(level: Int32) throws {
        // windowBits 15 + 16 asks for a gzip wrapper instead of zlib's; memLevel 8 is zlib's
        // default (zlib.h, deflateInit2).
        zlibStream = try Compression.makeZlibStream("create gzip compressor") {
            walship_deflateInit2($0, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        }
    }

    /// Compresses `input`, passing whatever compressed bytes are ready to `output` (zero or more
    /// calls; each buffer is valid only during its call).
    public func update(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(input, end: false, output: output)
    }

    /// Ends the stream and passes the rest of the compressed bytes to `output`.
    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), end: true, output: output)
    }

    private func run(
        _ input: UnsafeRawBufferPointer, end: Bool, output: (UnsafeRawBufferPointer) throws -> Void
    )
        throws
    {
        try state.begin()
        switch codec {
        case .none:
            if input.count > 0 { try output(input) }
        case .zstd:
            try compressZstd(input, end: end, output: output)
        case .gzip:
            try Compression.forEachZlibPiece(of: input) { piece, isLast in
                try compressGzip(piece, end: end && isLast, output: output)
            }
        }
        state.end(finished: end)
    }

    private func compressZstd(
        _ input: UnsafeRawBufferPointer, end: Bool, output: (UnsafeRawBufferPointer) throws -> Void
    )
        throws
    {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        // ZSTD_compressStream2: with ZSTD_e_continue all input is consumed once pos == size (data
        // may stay buffered inside); with ZSTD_e_end the frame is complete when it returns 0.
        while true {
            var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
            let remaining = try Compression.zstdCheck(
                ZSTD_compressStream2(zstdContext, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue),
                "compress zstd data", dataError: .internal)
            if outBuffer.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<outBuffer.pos])) }
            if end ? remaining == 0 : inBuffer.pos == inBuffer.size { return }
        }
    }

    private func compressGzip(
        _ input: UnsafeRawBufferPointer, end: Bool, output: (UnsafeRawBufferPointer) throws -> Void
    )
        throws
    {
        let stream = zlibStream!
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        // deflate: with Z_NO_FLUSH all input is consumed once a call leaves avail_out non-zero;
        // with Z_FINISH the member is complete when it returns Z_STREAM_END. Z_BUF_ERROR only
        // means no progress was possible, which a fresh output buffer rules out under Z_FINISH.
        while true {
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(buffer.count)
            let code = deflate(stream, end ? Z_FINISH : Z_NO_FLUSH)
            let produced = buffer.count - Int(stream.pointee.avail_out)
            guard code == Z_OK || code == Z_STREAM_END || (code == Z_BUF_ERROR && !end) else {
                throw Compression.zlibError(code, stream, "compress gzip data", dataError: .internal)
            }
            if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced])) }
            if end ? code == Z_STREAM_END : stream.pointee.avail_out != 0 { return }
        }
    }
}
