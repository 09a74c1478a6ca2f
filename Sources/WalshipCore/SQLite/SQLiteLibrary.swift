import CSQLite

/// Facts about the SQLite library walship is linked with.
public enum SQLiteLibrary {
    /// "3.40.1"
    public static var version: String { String(cString: sqlite3_libversion()) }

    /// 3040001 for 3.40.1.
    public static var versionNumber: Int32 { sqlite3_libversion_number() }

    public static var sourceID: String { String(cString: sqlite3_sourceid()) }

    /// SQLite 3.7.0 through 3.51.2 have a rare WAL-reset bug that can corrupt a database when a
    /// WAL restart races with a writer (fixed in 3.51.3). walship cannot prevent it; it says so
    /// at start so operators can upgrade the library their application uses.
    public static func hasWALResetBug(versionNumber: Int32 = versionNumber) -> Bool {
        versionNumber >= 3_007_000 && versionNumber <= 3_051_002
    }

    /// The warning logged at start when the linked SQLite has the WAL-reset bug, else nil.
    public static var walResetBugWarning: String? {
        guard hasWALResetBug() else { return nil }
        return
            "SQLite \(version) has the WAL-reset corruption bug fixed in 3.51.3; upgrade the SQLite library when you can (see docs/operations.md)"
    }
}
