import CZlib
import CZstd

/// zstd and zlib result codes turned into `WalshipError`s, in one place.
enum CompressionErrors {
    /// Checks a zstd return value; `ZSTD_isError` results become errors with zstd's own text.
    @discardableResult
    static func zstd(_ result: Int, _ what: @autoclosure () -> String, corrupt: Bool) throws -> Int {
        if ZSTD_isError(result) != 0 {
            let text = String(cString: ZSTD_getErrorName(result))
            throw WalshipError(corrupt ? .objectCorrupt : .internal, "\(what()): \(text)")
        }
        return result
    }

    /// An error for a zlib return code, with the stream's message when it has one.
    static func zlib(_ code: Int32, _ stream: z_stream, _ what: String, corrupt: Bool) -> WalshipError {
        let detail = stream.msg.map { String(cString: $0) } ?? "zlib error \(code)"
        return WalshipError(corrupt ? .objectCorrupt : .internal, "\(what): \(detail)")
    }
}
