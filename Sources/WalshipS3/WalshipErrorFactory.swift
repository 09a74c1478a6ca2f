import WalshipCore

/// Builds the `WalshipError`s the S3 module throws (the module implements the core's
/// `ObjectStore`, so it reports failures in the core's error type; curl and S3 error documents
/// travel as causes).
enum WalshipErrorFactory {
    static func curl(_ error: CurlError, transient: Bool) -> WalshipError {
        WalshipError(.storeUnavailable, "object store request failed", cause: error, isTransient: transient)
    }
}
