import CSQLite

extension Connection {
    /// Opens an application's database the way walship's own connections must: read-write
    /// without creating it (a missing file is an error, never a new empty database), with
    /// `SQLITE_FCNTL_PERSIST_WAL` set before the first read and `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`.
    ///
    /// Why (DESIGN.md section 3): when walship's connection is the last one to close, SQLite
    /// would otherwise checkpoint and delete `-wal`, and the next start could not prove
    /// continuity with the WAL it had shipped. A file the process may not write is opened
    /// read-only by SQLite itself.
    public static func openObserver(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws -> Connection {
        guard FileSystem.exists(path) else {
            throw WalshipError(.databaseUnusable, "open database '\(path)': the file does not exist")
        }
        guard FileSystem.isRegularFile(path) else {
            throw WalshipError(.databaseUnusable, "open database '\(path)': not a regular file")
        }
        let connection: Connection
        do {
            connection = try Connection(path: path, mode: [.readWrite])
            try connection.setPersistWAL(true)
            try connection.setNoCheckpointOnClose(true)
            try connection.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
        } catch let error as SQLiteError {
            throw WalshipError(.databaseUnusable, "open database '\(path)'", cause: error)
        }
        return connection
    }

    /// Reads the journal mode, turning "file is not a database" into a clear error.
    public func checkedJournalMode() throws -> String {
        do {
            return try journalMode()
        } catch let error as SQLiteError where error.isNotADatabase {
            throw WalshipError(.databaseUnusable, "read database '\(path)': the file is not a SQLite database")
        } catch let error as SQLiteError where error.isBusy {
            throw WalshipError(
                .databaseUnusable,
                "read database '\(path)': the database is locked by another connection (a writer in an EXCLUSIVE transaction, or an application using locking_mode=EXCLUSIVE); try again once it is released",
                cause: error)
        } catch let error as SQLiteError {
            throw WalshipError(.databaseUnusable, "read database '\(path)'", cause: error)
        }
    }
}
