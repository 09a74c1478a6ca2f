import Foundation
import WalshipCore

/// A test database whose every transaction keeps an invariant that a torn or mixed copy breaks:
/// transaction k inserts ledger row k and sets `counter.n = k` in the same commit. A copy taken at
/// one transaction boundary therefore has `count(ledger) == max(ledger.id) == counter.n`.
public enum LedgerDatabase {
    /// Creates the schema in WAL mode and pre-fills `rows` rows of `payloadBytes` random bytes.
    public static func create(
        at path: String, rows: Int = 0, payloadBytes: Int = 1000, journalMode: String = "wal"
    )
        throws
    {
        let connection = try Connection(path: path)
        defer { connection.close() }
        _ = try connection.scalarText("PRAGMA journal_mode=\(journalMode)")
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS ledger(id INTEGER PRIMARY KEY, payload BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS counter(n INTEGER NOT NULL);
            INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter);
            """)
        var done = 0
        while done < rows {
            let batch = min(10_000, rows - done)
            try connection.execute(
                """
                BEGIN;
                WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < \(batch))
                INSERT INTO ledger(id, payload)
                  SELECT (SELECT n FROM counter) + i, randomblob(\(payloadBytes)) FROM seq;
                UPDATE counter SET n = n + \(batch);
                COMMIT;
                """)
            done += batch
        }
    }

    /// Commits the next transaction on `connection`: one new ledger row and the counter.
    public static func commitNext(on connection: Connection, payloadBytes: Int = 200) throws {
        try connection.execute(
            """
            BEGIN IMMEDIATE;
            INSERT INTO ledger(id, payload) SELECT n + 1, randomblob(\(payloadBytes)) FROM counter;
            UPDATE counter SET n = n + 1;
            COMMIT;
            """)
    }

    /// The invariant check: returns the transaction count k the copy holds, or throws when the
    /// copy is not at a transaction boundary.
    public static func verifiedTransactionCount(at path: String) throws -> Int64 {
        let connection = try Connection(path: path, mode: [.readOnly])
        defer { connection.close() }
        let count = try connection.scalarInt("SELECT count(*) FROM ledger") ?? -1
        let maximum = try connection.scalarInt("SELECT coalesce(max(id), 0) FROM ledger") ?? -1
        let counter = try connection.scalarInt("SELECT n FROM counter") ?? -1
        guard count == maximum, maximum == counter else {
            throw WalshipError(
                .internal,
                "copy '\(path)' is not at a transaction boundary: count \(count), max id \(maximum), counter \(counter)"
            )
        }
        return counter
    }
}
