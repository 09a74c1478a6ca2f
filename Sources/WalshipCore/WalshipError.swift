/// The one error type of WalshipCore: a failure class (which decides the process exit status), a
/// message that reads "<what failed> <on what>: <why>", and an optional underlying cause.
///
/// Messages never contain secrets or row data. Paths and keys are quoted with single quotes.
public struct WalshipError: Error, Sendable, CustomStringConvertible {
    /// A failure class. Each class has its own exit status, documented in docs/operations.md.
    public enum Code: String, Sendable, CaseIterable {
        /// A bug or an unexpected state inside walship.
        case `internal`
        /// Bad flags, a bad configuration file, an unknown key, an unsupported setting.
        case usage
        /// The database is missing, not a SQLite database, not in WAL mode, or locked.
        case databaseUnusable
        /// The object store could not be reached or kept failing (network errors, 5xx, throttling)
        /// after retries.
        case storeUnavailable
        /// The object store refused the credentials or the request (403).
        case accessDenied
        /// The bucket does not exist.
        case bucketNotFound
        /// The object does not exist.
        case objectNotFound
        /// A conditional write found the object already there (`If-None-Match: *`).
        case objectExists
        /// The object store answered with something walship cannot interpret.
        case storeProtocol
        /// The output file exists and overwriting it was not allowed.
        case outputExists
        /// The restore target lies outside the restore window.
        case targetOutsideWindow
        /// The restore target lies in a gap between two generations.
        case targetInGap
        /// The replica holds no restore point.
        case replicaEmpty
        /// An object is missing or fails its checksum or format checks.
        case objectCorrupt
        /// `PRAGMA integrity_check` reported a problem.
        case integrityCheckFailed
        /// Two generations name the same predecessor.
        case fork
        /// The encryption key is missing or does not decrypt the replica.
        case encryptionKey
        /// A local file could not be read or written (permissions, disk full).
        case localIO
        /// The replica's newest generation belongs to another database (its identity differs).
        case replicaOfAnotherDatabase
        /// The operation was cancelled (a signal).
        case cancelled

        /// The process exit status for this failure class.
        public var exitCode: Int32 {
            switch self {
            case .internal: 1
            case .usage: 2
            case .databaseUnusable: 3
            case .storeUnavailable, .accessDenied, .bucketNotFound, .objectExists, .storeProtocol: 4
            case .outputExists: 5
            case .targetOutsideWindow: 6
            case .targetInGap: 7
            case .replicaEmpty: 8
            case .objectCorrupt, .objectNotFound: 9
            case .integrityCheckFailed: 10
            case .fork: 11
            case .encryptionKey: 12
            case .localIO: 13
            case .replicaOfAnotherDatabase: 14
            case .cancelled: 130
            }
        }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?
    /// Whether trying the same operation again may succeed (a network error, a 5xx, throttling).
    public var isTransient: Bool
    /// The `errno` of a failed system call, when that is what failed.
    public var systemError: Int32?

    public init(
        _ code: Code, _ message: String, cause: (any Error & Sendable)? = nil, isTransient: Bool = false,
        systemError: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.isTransient = isTransient
        self.systemError = systemError
    }

    /// Whether a write failed because its file system (or a quota) is full.
    public var isDiskFull: Bool {
        if systemError == 28 || systemError == 122 { return true }  // ENOSPC, EDQUOT (Linux)
        if let cause = cause as? WalshipError { return cause.isDiskFull }
        if let cause = cause as? SQLiteError { return cause.isDiskFull }
        return false
    }

    /// Whether SQLite reported the database malformed or not a database (SQLITE_CORRUPT,
    /// SQLITE_NOTADB): the file itself is broken, as SQLite sees it now.
    public var isMalformedDatabase: Bool {
        if let cause = cause as? WalshipError { return cause.isMalformedDatabase }
        if let cause = cause as? SQLiteError { return cause.isCorrupt || cause.isNotADatabase }
        return false
    }

    public var description: String {
        guard let cause else { return message }
        let causeText = String(describing: cause)
        if message.hasSuffix(causeText) { return message }
        return "\(message): \(causeText)"
    }
}
