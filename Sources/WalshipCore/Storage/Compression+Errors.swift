import CZlib
import CZstd

/// zstd and zlib result codes turned into `WalshipError`s, in one place. Messages read
/// "<what failed>: <the library's own text>".
extension Compression {
    /// zstd error codes from `zstd_errors.h`, which `zstd.h` does not include. That header pins
    /// the values below 100 since v1.3.1, and a failed call returns `(size_t)-code`.
    private enum ZstdErrorCode {
        static let windowTooLarge = 16
        static let memoryAllocation = 64
    }

    /// Checks a zstd return value: `ZSTD_isError` results throw with `ZSTD_getErrorName` text,
    /// as `dataError` (out of memory is always `.internal`); other values are returned.
    @discardableResult
    static func zstdCheck(
        _ result: Int, _ what: @autoclosure () -> String, dataError: WalshipError.Code
    ) throws -> Int {
        guard ZSTD_isError(result) != 0 else { return result }
        let text = String(cString: ZSTD_getErrorName(result))
        switch 0 &- result {
        case ZstdErrorCode.memoryAllocation:
            throw WalshipError(.internal, "\(what()): \(text)")
        case ZstdErrorCode.windowTooLarge:
            throw WalshipError(
                dataError,
                "\(what()): \(text) (the frame needs a window above \(1 << (zstdWindowLogMax - 20)) MiB, the most"
                    + " walship reads; recompress it at zstd level 19 or lower, without --long)")
        default:
            throw WalshipError(dataError, "\(what()): \(text)")
        }
    }

    /// The error for a zlib return code, with the stream's `msg` when zlib set one, else
    /// `zError`'s text. `Z_DATA_ERROR` and `Z_NEED_DICT` (bad or foreign input) are `dataError`;
    /// memory, stream-state and version errors are `.internal`.
    static func zlibError(
        _ code: Int32, _ stream: UnsafePointer<z_stream>, _ what: String, dataError: WalshipError.Code
    ) -> WalshipError {
        let text = stream.pointee.msg.map { String(cString: $0) } ?? String(cString: zError(code))
        let isDataError = code == Z_DATA_ERROR || code == Z_NEED_DICT
        return WalshipError(isDataError ? dataError : .internal, "\(what): \(text)")
    }
}
