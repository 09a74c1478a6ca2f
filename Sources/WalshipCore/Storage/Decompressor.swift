import CZlib
import CZstd

/// A streaming decompressor: feed input with `update`, then call `finish` to check that the input
/// ended cleanly.
///
/// Like `zstd -d` and `gzip -d`, it reads concatenated zstd frames and multi-member gzip streams;
/// unlike `gzip -d`, it rejects anything after the last gzip member, trailing zeros included.
/// Memory is bounded: one 128 KiB output buffer allocated at creation, and zstd frames needing a
/// window above 16 MiB are refused (`ZSTD_d_windowLogMax` 24). Corrupt, truncated or empty input
/// is `.objectCorrupt`.
///
/// Invariants: after `finish`, or after any call threw, every call throws `.internal`. Not
/// thread-safe: one caller at a time.
public final class Decompressor {
    public let codec: CompressionCodec
    private let buffer: UnsafeMutableRawBufferPointer
    private var zstdContext: OpaquePointer?
    private var zlibStream: UnsafeMutablePointer<z_stream>?
    private var state: CodecStreamState
    /// Whether the decoder holds part of a frame or member: input ending here is truncated.
    private var insideFrame = false
    /// Whether at least one frame or member ended.
    private var sawCompleteFrame = false
    /// gzip: a member ended with the last input, so the stream needs `inflateReset` before more.
    private var memberEnded = false

    public init(codec: CompressionCodec) throws {
        self.codec = codec
        state = CodecStreamState(operation: "decompress \(codec.name) data")
        // From here on every stored property is set, so a throw runs deinit, which frees what
        // exists: no manual cleanup before throwing.
        buffer = .allocate(byteCount: Compression.outputChunkSize, alignment: 16)
        switch codec {
        case .none:
            break
        case .zstd:
            guard let context = ZSTD_createDCtx() else {
                throw WalshipError(.internal, "create zstd decompressor: out of memory")
            }
            zstdContext = context
            try Compression.zstdCheck(
                ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Compression.zstdWindowLogMax),
                "limit zstd window", dataError: .internal)
        case .gzip:
            // windowBits 15 + 16 accepts only the gzip wrapper (zlib.h, inflateInit2).
            zlibStream = try Compression.makeZlibStream("create gzip decompressor") {
                walship_inflateInit2($0, 15 + 16)
            }
        }
    }

    deinit {
        if let zstdContext { ZSTD_freeDCtx(zstdContext) }
        if let zlibStream { Compression.freeZlibStream(zlibStream, end: inflateEnd) }
        buffer.deallocate()
    }

    /// Decompresses `input`, passing whatever bytes are ready to `output` (zero or more calls;
    /// each buffer is valid only during its call).
    public func update(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try state.checkOpen()
        guard input.count > 0 else { return }
        try state.begin()
        switch codec {
        case .none:
            try output(input)
        case .zstd:
            try decompressZstd(input, output: output)
        case .gzip:
            try Compression.forEachZlibPiece(of: input) { piece, _ in try decompressGzip(piece, output: output) }
        }
        state.end()
    }

    /// Checks that the input ended right after a complete frame or member. The decompressor
    /// cannot be used afterwards.
    public func finish() throws {
        try state.checkOpen()
        state.end(finished: true)
        guard codec != .none else { return }
        let unit = codec == .zstd ? "frame" : "member"
        if insideFrame {
            throw WalshipError(
                .objectCorrupt, "decompress \(codec.name) data: the input ends inside a \(unit) (truncated)")
        }
        if !sawCompleteFrame {
            throw WalshipError(.objectCorrupt, "decompress \(codec.name) data: the input holds no complete \(unit)")
        }
    }

    private func decompressZstd(
        _ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void
    )
        throws
    {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        // ZSTD_decompressStream returns 0 once a frame is decoded and fully flushed, and stops
        // there; a following frame starts on the next call. Otherwise it returns a hint > 0, and
        // all input is used with nothing pending once pos == size with output space left over.
        // It is never called with no input at a frame boundary: that would start a new frame.
        while true {
            var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
            let hint = try Compression.zstdCheck(
                ZSTD_decompressStream(zstdContext, &outBuffer, &inBuffer), "decompress zstd data",
                dataError: .objectCorrupt)
            if outBuffer.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<outBuffer.pos])) }
            insideFrame = hint != 0
            if hint == 0 {
                sawCompleteFrame = true
                if inBuffer.pos == inBuffer.size { return }
            } else if inBuffer.pos == inBuffer.size && outBuffer.pos < outBuffer.size {
                return
            }
        }
    }

    private func decompressGzip(
        _ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void
    )
        throws
    {
        let stream = zlibStream!
        if memberEnded {
            try resetGzip(stream)
        }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        insideFrame = true
        // inflate: Z_OK with avail_out left over means all input is used and nothing is pending;
        // Z_STREAM_END ends one member (the bytes after it stay in next_in); Z_BUF_ERROR means no
        // progress was possible, which with a fresh output buffer happens only without input.
        while true {
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(buffer.count)
            let code = inflate(stream, Z_NO_FLUSH)
            let produced = buffer.count - Int(stream.pointee.avail_out)
            guard code == Z_OK || code == Z_STREAM_END || (code == Z_BUF_ERROR && stream.pointee.avail_in == 0) else {
                throw Compression.zlibError(code, stream, "decompress gzip data", dataError: .objectCorrupt)
            }
            if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: buffer[..<produced])) }
            if code == Z_STREAM_END {
                insideFrame = false
                sawCompleteFrame = true
                memberEnded = true
                if stream.pointee.avail_in == 0 { return }
                // RFC 1952 section 2.2: a gzip file is a series of members. What follows must be
                // another member; anything else fails that member's header check.
                try resetGzip(stream)
                insideFrame = true
            } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                return
            }
        }
    }

    /// Prepares the stream for the next gzip member.
    private func resetGzip(_ stream: UnsafeMutablePointer<z_stream>) throws {
        let code = inflateReset(stream)
        guard code == Z_OK else {
            throw Compression.zlibError(code, stream, "decompress gzip data", dataError: .objectCorrupt)
        }
        memberEnded = false
    }
}
