import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// Copies a database with the SQLite online backup API (`sqlite3_backup_init/step/finish`), in
/// steps of `stepPages` pages, reporting progress after each step.
///
/// The source connection must already hold a read transaction (`Connection.beginReadTransaction`)
/// and keep it for the whole copy. `sqlite3_backup_step` begins its own read transaction for each
/// step only when none is open, and ends it again; in that mode a commit by another connection
/// between two steps makes the copy restart (or, in WAL mode, mixes two snapshots). With one read
/// transaction held throughout, every step reads the same snapshot: concurrent commits neither
/// restart the copy nor leak into it, and the copy equals the database at that snapshot. The
/// engine is shared by `walship backup` and by replication snapshots.
public struct OnlineBackup: Sendable {
    /// Where a copy stands after a step.
    public struct Progress: Sendable, Equatable {
        public var remainingPages: Int
        public var totalPages: Int
        public var copiedPages: Int { totalPages - remainingPages }
        /// 0.0 ... 1.0
        public var fraction: Double { totalPages == 0 ? 1 : Double(copiedPages) / Double(totalPages) }
    }

    /// What a finished copy produced.
    public struct Result: Sendable, Equatable {
        public var pageCount: Int
        public var pageSize: Int
        public var steps: Int
    }

    /// Pages copied per `sqlite3_backup_step`; at least 1.
    public var stepPages: Int32
    /// Pause between steps, to leave I/O bandwidth to the application.
    public var sleepBetweenSteps: Duration

    public init(stepPages: Int32 = 1024, sleepBetweenSteps: Duration = .zero) {
        self.stepPages = max(1, stepPages)
        self.sleepBetweenSteps = sleepBetweenSteps
    }

    /// Copies the main database of `source` into `destination`'s main database, replacing its
    /// content. Runs on the calling thread and blocks until done; call it off the cooperative pool.
    ///
    /// - Parameters:
    ///   - isCancelled: checked before each step; when it returns true the copy stops with
    ///     `WalshipError.Code.cancelled`.
    ///   - progress: called after each step.
    public func copy(
        from source: Connection, to destination: Connection,
        isCancelled: () -> Bool = { false },
        progress: (Progress) -> Void = { _ in }
    ) throws -> Result {
        guard source.transactionState != .none else {
            throw WalshipError(
                .internal, "online backup of '\(source.path)' needs an open read transaction on the source")
        }
        let sourceHandle = try source.requireHandle("backup")
        let destinationHandle = try destination.requireHandle("backup")
        guard let backup = sqlite3_backup_init(destinationHandle, "main", sourceHandle, "main") else {
            throw SQLiteError(
                code: sqlite3_extended_errcode(destinationHandle), connection: destinationHandle,
                operation: "start online backup of '\(source.path)' to '\(destination.path)'")
        }
        var finished = false
        defer { if !finished { sqlite3_backup_finish(backup) } }

        var steps = 0
        var busyRetries = 0
        while true {
            if isCancelled() {
                throw WalshipError(.cancelled, "online backup of '\(source.path)' cancelled")
            }
            let rc = sqlite3_backup_step(backup, stepPages)
            steps += 1
            let primary = rc & 0xff
            if rc == SQLITE_OK || rc == SQLITE_DONE {
                busyRetries = 0
                progress(
                    Progress(
                        remainingPages: Int(sqlite3_backup_remaining(backup)),
                        totalPages: Int(sqlite3_backup_pagecount(backup))))
                if rc == SQLITE_DONE { break }
                if sleepBetweenSteps > .zero { Self.sleep(sleepBetweenSteps) }
            } else if primary == SQLITE_BUSY || primary == SQLITE_LOCKED {
                // The destination is private to us, so this is the source's lock (a
                // rollback-journal database being written). Wait and retry the same step.
                busyRetries += 1
                if busyRetries > 30_000 {
                    throw SQLiteError(
                        code: rc, connection: destinationHandle,
                        operation: "online backup of '\(source.path)' waited 5 minutes for a lock")
                }
                Self.sleep(.milliseconds(10))
            } else {
                throw Self.stepError(rc, source: source, destination: destination)
            }
        }
        let pageCount = Int(sqlite3_backup_pagecount(backup))
        finished = true
        let rc = sqlite3_backup_finish(backup)
        if rc != SQLITE_OK { throw Self.stepError(rc, source: source, destination: destination) }
        return Result(pageCount: pageCount, pageSize: try destination.pageSize(), steps: steps)
    }

    /// A failed step or finish: a full disk says so and names the copy (SQLite's message for the
    /// destination connection would read "not an error", since the backup object set the code).
    static func stepError(_ rc: Int32, source: Connection, destination: Connection) -> any Error {
        let cause = SQLiteError(
            code: rc, message: sqlite3_errstr(rc).map { String(cString: $0) } ?? "SQLite error \(rc)",
            operation: "online backup of '\(source.path)' to '\(destination.path)'")
        if cause.isDiskFull || (cause.isIOError && errno == 28) {
            return WalshipError(
                .localIO,
                "online backup of '\(source.path)' to '\(destination.path)' failed: the disk holding '\(FileSystem.directory(of: destination.path))' is full",
                cause: cause, systemError: 28)
        }
        return cause
    }

    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
