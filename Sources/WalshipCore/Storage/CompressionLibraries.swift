import CZlib
import CZstd

/// Versions of the compression libraries walship is linked with.
public enum CompressionLibraries {
    public static var zlibVersion: String { String(cString: CZlib.zlibVersion()) }
    public static var zstdVersion: String { String(cString: ZSTD_versionString()) }
}
