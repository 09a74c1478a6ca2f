import CSQLite

/// A failed SQLite call: the extended result code, SQLite's own message (`sqlite3_errmsg`) and
/// what walship was doing when it failed.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The extended result code (for example `SQLITE_BUSY_SNAPSHOT`); `primaryCode` is its low byte.
    public let code: Int32
    public let message: String
    public let operation: String

    public init(code: Int32, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    init(code: Int32, connection: OpaquePointer?, operation: String) {
        let text: String
        // sqlite3_errmsg describes the connection's last error, which an error reported elsewhere
        // (a backup object's) did not set: it then reads "not an error".
        if let connection, sqlite3_errcode(connection) != SQLITE_OK, let cText = sqlite3_errmsg(connection) {
            text = String(cString: cText)
        } else if let cText = sqlite3_errstr(code) {
            text = String(cString: cText)
        } else {
            text = "SQLite error \(code)"
        }
        self.init(code: code, message: text, operation: operation)
    }

    public var primaryCode: Int32 { code & 0xff }

    /// SQLITE_BUSY or SQLITE_LOCKED: another connection holds a conflicting lock.
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    /// SQLITE_IOERR (any extended code): a read, write or lock of a file failed.
    public var isIOError: Bool { primaryCode == SQLITE_IOERR }

    /// SQLITE_NOTADB: the file is not a SQLite database (or is encrypted).
    public var isNotADatabase: Bool { primaryCode == SQLITE_NOTADB }

    /// SQLITE_CORRUPT: the database file is malformed.
    public var isCorrupt: Bool { primaryCode == SQLITE_CORRUPT }

    /// SQLITE_FULL: a write failed because the disk (or a quota) is full.
    public var isDiskFull: Bool { primaryCode == SQLITE_FULL }

    public var description: String { "\(operation): \(message) (SQLite code \(code))" }
}

/// Throws a `SQLiteError` for any result code other than the accepted ones.
@inline(__always)
func check(
    _ result: Int32, _ connection: OpaquePointer?, _ operation: @autoclosure () -> String,
    accepting accepted: Int32 = SQLITE_OK
) throws {
    if result != accepted && result != SQLITE_OK {
        throw SQLiteError(code: result, connection: connection, operation: operation())
    }
}
