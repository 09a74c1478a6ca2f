import Logging

/// `--set-wal`: switches a database to WAL mode, the only change walship ever makes to the
/// application's database settings, and only when asked.
public enum WALMode {
    public static func enable(databaseAt path: String, logger: Logger) throws {
        let connection = try Connection.openObserver(path: path)
        defer { connection.close() }
        let mode = try connection.checkedJournalMode()
        guard mode != "wal" else { return }
        let result = try connection.scalarText("PRAGMA journal_mode=WAL") ?? ""
        guard result.lowercased() == "wal" else {
            throw WalshipError(.databaseUnusable, "could not switch '\(path)' to WAL mode (it is in '\(result)' mode)")
        }
        logger.warning("switched the database to WAL mode (--set-wal)", metadata: ["db.path": "\(path)"])
    }
}
