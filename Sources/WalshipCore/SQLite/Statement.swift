import CSQLite

/// A compiled SQL statement bound to one `Connection`. Finalized when released.
public final class Statement {
    let handle: OpaquePointer
    /// Keeps the connection open while the statement lives.
    public let connection: Connection
    public let sql: String

    init(_ handle: OpaquePointer, connection: Connection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    private func failure(_ rc: Int32, _ what: String) -> SQLiteError {
        SQLiteError(
            code: rc, connection: connection.handle,
            operation: "\(what) '\(sql.prefix(80))' on '\(connection.path)'")
    }

    /// Steps once. Returns true when a row is available, false when the statement is done.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw failure(rc, "step")
        }
    }

    /// Steps until done, discarding rows.
    public func run() throws {
        while try step() {}
    }

    /// Resets the statement so it can run again; bindings are kept.
    public func reset() {
        sqlite3_reset(handle)
    }

    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    // MARK: Binding (indexes start at 1, as in SQLite)

    public func bind(_ index: Int32, _ value: Int64) throws {
        let rc = sqlite3_bind_int64(handle, index, value)
        if rc != SQLITE_OK { throw failure(rc, "bind") }
    }

    public func bind(_ index: Int32, _ value: Int) throws {
        try bind(index, Int64(value))
    }

    public func bind(_ index: Int32, _ value: Double) throws {
        let rc = sqlite3_bind_double(handle, index, value)
        if rc != SQLITE_OK { throw failure(rc, "bind") }
    }

    public func bind(_ index: Int32, _ value: String) throws {
        let rc = sqlite3_bind_text(handle, index, value, -1, walship_sqlite3_transient())
        if rc != SQLITE_OK { throw failure(rc, "bind") }
    }

    public func bind(_ index: Int32, blob: some Collection<UInt8>) throws {
        let bytes = Array(blob)
        let rc = bytes.withUnsafeBytes { raw in
            sqlite3_bind_blob64(
                handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), sqlite3_uint64(raw.count),
                walship_sqlite3_transient())
        }
        if rc != SQLITE_OK { throw failure(rc, "bind") }
    }

    public func bindNull(_ index: Int32) throws {
        let rc = sqlite3_bind_null(handle, index)
        if rc != SQLITE_OK { throw failure(rc, "bind") }
    }

    // MARK: Columns (indexes start at 0, as in SQLite)

    public var columnCount: Int32 { sqlite3_column_count(handle) }

    /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
    public func columnType(_ index: Int32) -> Int32 { sqlite3_column_type(handle, index) }

    public func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }

    public func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }

    public func text(_ index: Int32) -> String? {
        guard let cText = sqlite3_column_text(handle, index) else { return nil }
        return String(cString: cText)
    }

    /// The column's bytes as a blob (text is returned as its UTF-8 bytes).
    public func blob(_ index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let pointer = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// Calls `body` with the column's bytes without copying them. The buffer is valid only
    /// during the call.
    public func withBlob<T>(_ index: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_blob(handle, index)
        let count = Int(sqlite3_column_bytes(handle, index))
        return try body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
}
