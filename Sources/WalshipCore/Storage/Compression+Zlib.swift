import CZlib

/// The zlib stream `Compressor` and `Decompressor` each keep for gzip: allocated and set up in one
/// call, freed in one call.
extension Compression {
    /// A `z_stream` set up by `initialize` (`deflateInit2` or `inflateInit2`); freed again when
    /// that fails, with the error for `what`.
    static func makeZlibStream(
        _ what: String, _ initialize: (UnsafeMutablePointer<z_stream>) -> Int32
    ) throws -> UnsafeMutablePointer<z_stream> {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let code = initialize(stream)
        guard code == Z_OK else {
            let error = zlibError(code, stream, what, dataError: .internal)
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw error
        }
        return stream
    }

    /// Ends a stream made by `makeZlibStream` (`end`: `deflateEnd` or `inflateEnd`) and frees it.
    static func freeZlibStream(
        _ stream: UnsafeMutablePointer<z_stream>, end: (UnsafeMutablePointer<z_stream>) -> Int32
    ) {
        _ = end(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }
}
