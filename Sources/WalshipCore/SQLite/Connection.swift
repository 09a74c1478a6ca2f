import CSQLite

/// One SQLite database connection.
///
/// Opened with `SQLITE_OPEN_FULLMUTEX`, so SQLite itself serializes calls, and extended result
/// codes on. walship uses each connection from one thread at a time; the blocking calls it makes
/// (`step`, checkpoints, the backup API) never run on the Swift cooperative thread pool.
public final class Connection: @unchecked Sendable {  // SQLite serializes: opened FULLMUTEX.
    /// How to open the database file.
    public struct OpenMode: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let readOnly = OpenMode(rawValue: SQLITE_OPEN_READONLY)
        public static let readWrite = OpenMode(rawValue: SQLITE_OPEN_READWRITE)
        /// Create the file if it does not exist (only with `readWrite`).
        public static let create = OpenMode(rawValue: SQLITE_OPEN_CREATE)
    }

    /// `sqlite3_txn_state` of the main schema.
    public enum TransactionState: Int32, Sendable {
        case none = 0  // SQLITE_TXN_NONE
        case read = 1  // SQLITE_TXN_READ
        case write = 2  // SQLITE_TXN_WRITE
    }

    /// `sqlite3_wal_checkpoint_v2` modes.
    public enum CheckpointMode: Int32, Sendable {
        case passive = 0  // SQLITE_CHECKPOINT_PASSIVE
        case full = 1  // SQLITE_CHECKPOINT_FULL
        case restart = 2  // SQLITE_CHECKPOINT_RESTART
        case truncate = 3  // SQLITE_CHECKPOINT_TRUNCATE
    }

    /// What `sqlite3_wal_checkpoint_v2` reported: frames in the WAL and frames checkpointed.
    public struct CheckpointResult: Sendable, Equatable {
        public var walFrames: Int32
        public var checkpointedFrames: Int32
    }

    public let path: String
    /// The raw `sqlite3*`; valid until `close()`.
    public private(set) var handle: OpaquePointer?

    /// Opens `path`. Throws `SQLiteError` when SQLite cannot open it.
    public init(path: String, mode: OpenMode = [.readWrite, .create]) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = mode.rawValue | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        if rc != SQLITE_OK {
            let error = SQLiteError(code: rc, connection: db, operation: "open '\(path)'")
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        if let handle { sqlite3_close_v2(handle) }
    }

    /// Closes the connection. Statements still open are finalized first by their owners; a
    /// connection with unfinalized statements is closed once they are (`sqlite3_close_v2`).
    public func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    func requireHandle(_ operation: @autoclosure () -> String) throws -> OpaquePointer {
        guard let handle else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "connection is closed", operation: operation())
        }
        return handle
    }

    /// Sets the busy timeout: how long a call waits for a lock before returning SQLITE_BUSY.
    public func setBusyTimeout(milliseconds: Int32) throws {
        let db = try requireHandle("set busy timeout")
        try check(sqlite3_busy_timeout(db, milliseconds), db, "set busy timeout on '\(path)'")
    }

    /// Runs one or more statements that return no rows of interest.
    public func execute(_ sql: String) throws {
        let db = try requireHandle("execute")
        var errorText: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorText)
        if rc != SQLITE_OK {
            let message = errorText.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorText)
            throw SQLiteError(code: rc, message: message, operation: "execute '\(sql.prefix(80))' on '\(path)'")
        }
    }

    /// Compiles one statement.
    public func prepare(_ sql: String) throws -> Statement {
        let db = try requireHandle("prepare")
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, 0, &statement, nil)
        if rc != SQLITE_OK {
            sqlite3_finalize(statement)
            throw SQLiteError(code: rc, connection: db, operation: "prepare '\(sql.prefix(80))' on '\(path)'")
        }
        guard let statement else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "empty statement", operation: "prepare '\(sql)'")
        }
        return Statement(statement, connection: self, sql: sql)
    }

    /// Runs a query and returns the first column of its first row as an integer (nil for no row
    /// or NULL).
    public func scalarInt(_ sql: String) throws -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step(), statement.columnType(0) != SQLITE_NULL else { return nil }
        return statement.int64(0)
    }

    /// Runs a query and returns the first column of its first row as text (nil for no row or NULL).
    public func scalarText(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        guard try statement.step(), statement.columnType(0) != SQLITE_NULL else { return nil }
        return statement.text(0)
    }

    /// Runs a query and returns the first column of every row as text.
    public func textColumn(_ sql: String) throws -> [String] {
        let statement = try prepare(sql)
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0) ?? "") }
        return rows
    }

    /// `sqlite3_txn_state` for the main schema.
    public var transactionState: TransactionState {
        guard let handle else { return .none }
        return TransactionState(rawValue: sqlite3_txn_state(handle, "main")) ?? .none
    }

    /// Whether the connection is in autocommit mode (no explicit transaction open).
    public var isAutocommit: Bool {
        guard let handle else { return true }
        return sqlite3_get_autocommit(handle) != 0
    }

    /// Begins a read transaction that stays open until `rollback()`/`commit()`: `BEGIN` is
    /// deferred, so a read of the schema makes SQLite take the read lock (the WAL read mark).
    /// On return `transactionState == .read`.
    public func beginReadTransaction() throws {
        try execute("BEGIN")
        do {
            let statement = try prepare("SELECT count(*) FROM sqlite_schema WHERE 0")
            _ = try statement.step()
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        guard transactionState != .none else {
            try? execute("ROLLBACK")
            throw SQLiteError(
                code: SQLITE_INTERNAL, message: "read transaction did not begin",
                operation: "begin read transaction on '\(path)'")
        }
    }

    /// Ends any open transaction without writing.
    public func rollback() throws {
        if !isAutocommit { try execute("ROLLBACK") }
    }

    /// `PRAGMA journal_mode` of the main database ("wal", "delete", ...), lower-cased.
    public func journalMode() throws -> String {
        (try scalarText("PRAGMA journal_mode") ?? "").lowercased()
    }

    /// `PRAGMA page_size`.
    public func pageSize() throws -> Int {
        Int(try scalarInt("PRAGMA page_size") ?? 0)
    }

    /// Sets `SQLITE_FCNTL_PERSIST_WAL`: when this connection is the last to close, SQLite keeps the
    /// `-wal` file instead of deleting it. Must be set before the first read.
    public func setPersistWAL(_ on: Bool) throws {
        let db = try requireHandle("persist WAL")
        var value: Int32 = on ? 1 : 0
        try check(
            sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &value), db,
            "set SQLITE_FCNTL_PERSIST_WAL on '\(path)'")
    }

    /// The size of the database file, read through this connection's own file handle.
    public func databaseFileSize() throws -> Int64 {
        let db = try requireHandle("database file size")
        var size: sqlite3_int64 = 0
        try check(walship_sqlite3_main_file_size(db, &size), db, "size of '\(path)'")
        return Int64(size)
    }

    /// Reads `buffer.count` bytes of the database file at `offset` through this connection's own
    /// file handle (never a descriptor of walship's: DESIGN.md section 3). Call inside a read
    /// transaction. Returns false when the file ended first (the rest is zero-filled).
    public func readDatabaseFile(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Bool {
        let db = try requireHandle("read database file")
        let rc = walship_sqlite3_read_main_file(db, buffer.baseAddress, Int32(buffer.count), sqlite3_int64(offset))
        if rc == SQLITE_IOERR | (2 << 8) { return false }  // SQLITE_IOERR_SHORT_READ (a macro)
        try check(rc, db, "read '\(path)' at offset \(offset)")
        return true
    }

    /// Sets `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`: closing this connection never checkpoints.
    public func setNoCheckpointOnClose(_ on: Bool) throws {
        let db = try requireHandle("no checkpoint on close")
        var result: Int32 = 0
        try check(
            walship_sqlite3_db_config_int(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on ? 1 : 0, &result),
            db, "set SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE on '\(path)'")
    }

    /// Runs `sqlite3_wal_checkpoint_v2` on the main database.
    public func checkpoint(_ mode: CheckpointMode) throws -> CheckpointResult {
        let db = try requireHandle("checkpoint")
        var log: Int32 = 0
        var done: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(db, "main", mode.rawValue, &log, &done)
        try check(rc, db, "checkpoint '\(path)'")
        return CheckpointResult(walFrames: log, checkpointedFrames: done)
    }

    /// `PRAGMA integrity_check`: returns the problems found, or an empty array when the result is
    /// "ok". Reads every page of the database.
    public func integrityProblems(limit: Int = 20) throws -> [String] {
        let rows = try textColumn("PRAGMA integrity_check(\(limit))")
        return rows == ["ok"] ? [] : rows
    }

    /// Number of rows changed by the last statement.
    public var changes: Int { handle.map { Int(sqlite3_changes64($0)) } ?? 0 }
}
