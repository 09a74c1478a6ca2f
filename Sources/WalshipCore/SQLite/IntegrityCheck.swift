/// Runs `PRAGMA integrity_check` on a finished database file before walship hands it over.
public enum IntegrityCheck {
    /// Opens `path`, checks every page, closes it again and removes the `-wal`/`-shm` files
    /// SQLite may have created for a WAL-mode file. Throws `integrityCheckFailed` listing the
    /// first problems SQLite found.
    public static func verify(databaseAt path: String) throws {
        var problems: [String] = []
        do {
            let connection = try Connection(path: path, mode: [.readWrite])
            defer { connection.close() }
            problems = try connection.integrityProblems()
        } catch let error as SQLiteError {
            FileSystem.removeCompanions(of: path)
            throw WalshipError(.integrityCheckFailed, "integrity check of '\(path)' failed", cause: error)
        }
        FileSystem.removeCompanions(of: path)
        if !problems.isEmpty {
            throw WalshipError(
                .integrityCheckFailed,
                "integrity check of '\(path)' failed: \(problems.prefix(5).joined(separator: "; "))")
        }
    }
}
