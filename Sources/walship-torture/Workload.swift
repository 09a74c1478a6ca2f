import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// One state of the application database: every commit the app made, in order. Commit index 0
/// is the state before the agent first started.
struct OracleCommit {
    /// `meta.k` after the commit (a VACUUM keeps the previous one).
    var k: Int64
    var hash: String
    /// Wall clock (Unix ms) just before BEGIN and just after COMMIT returned.
    var startMs: UInt64
    var endMs: UInt64
}

/// The application: a seeded mix of transactions from several connections to one WAL-mode
/// database, recording the content hash after every commit.
final class Workload {
    let path: String
    private(set) var connections: [Connection] = []
    private(set) var oracle: [OracleCommit] = []
    private(set) var counts: [String: Int] = [:]
    private var nextK: Int64 = 1
    /// A commit of another process killed inside COMMIT that had not landed: its frames stay in
    /// the WAL past the last commit until the next commit overwrites them, and a wal-index
    /// recovery before that (a damaged header mended, the first connection after every one
    /// closed) publishes it, as SQLite would for the application. `settleLateLanding` records it.
    private var inDoubt: (k: Int64, startMs: UInt64)?
    /// A connection holding a read transaction open, and until when (Unix ms).
    private var reader: (connection: Connection, untilMs: UInt64)?

    init(path: String, connections count: Int) throws {
        self.path = path
        let setup = try Connection(path: path)
        _ = try setup.scalarText("PRAGMA journal_mode=wal")
        try setup.execute(
            """
            CREATE TABLE meta(k INTEGER NOT NULL); INSERT INTO meta VALUES (0);
            CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB);
            """)
        setup.close()
        for _ in 0..<count { connections.append(try Self.open(path)) }
        oracle.append(
            OracleCommit(
                k: 0, hash: try ContentHash.of(connection: connections[0]), startMs: Self.nowMs(), endMs: Self.nowMs()))
    }

    static func open(_ path: String) throws -> Connection {
        let connection = try Connection(path: path)
        try connection.setBusyTimeout(milliseconds: 10_000)
        return connection
    }

    static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    var lastK: Int64 { oracle.last!.k }

    func count(_ name: String) { counts[name, default: 0] += 1 }

    /// One committed transaction of a random kind on a random connection.
    func commit(using random: inout SeededGenerator) throws {
        try settleLateLanding()
        let connection = connections.randomElement(using: &random)!
        let k = nextK
        var sql = "BEGIN IMMEDIATE;"
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<40:
            let rows = Int.random(in: 1...4, using: &random)
            for _ in 0..<rows {
                sql +=
                    "INSERT INTO items(name, data) VALUES ('n\(k)', randomblob(\(Int.random(in: 10...3000, using: &random))));"
            }
        case 40..<60:
            sql +=
                "UPDATE items SET name = name || 'u', data = randomblob(\(Int.random(in: 50...900, using: &random))) WHERE id % 5 = \(k % 5);"
        case 60..<75:
            sql +=
                "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT \(Int.random(in: 1...6, using: &random)));"
        case 75..<80:
            // Overflow pages; the big rows go again soon so the database stays small.
            sql +=
                "INSERT INTO items(name, data) VALUES ('big', randomblob(\(Int.random(in: 20_000...300_000, using: &random))));"
            sql +=
                "DELETE FROM items WHERE name = 'big' AND id NOT IN (SELECT id FROM items WHERE name = 'big' ORDER BY id DESC LIMIT 2);"
        case 80..<86:
            sql +=
                "CREATE TABLE IF NOT EXISTS extra\(k % 4)(x TEXT, y BLOB); INSERT INTO extra\(k % 4) VALUES ('\(k)', randomblob(100));"
        case 86..<90:
            sql += "DROP TABLE IF EXISTS extra\(k % 4);"
        case 90..<94:
            sql += "CREATE INDEX IF NOT EXISTS items_name ON items(name);"
        case 94..<97:
            sql += "DROP INDEX IF EXISTS items_name;"
        default:
            sql += "DELETE FROM items WHERE id % 3 = \(k % 3);"
        }
        // Keep the table from growing without bound.
        sql +=
            "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY id LIMIT max(0, (SELECT count(*) FROM items) - 400));"
        sql += "UPDATE meta SET k = \(k); COMMIT;"
        let start = Self.nowMs()
        try connection.execute(sql)
        let end = Self.nowMs()
        try record(k: k, connection: connection, startMs: start, endMs: end)
        count("commits")
    }

    /// A transaction that writes and then rolls back: nothing to record. A large one spills
    /// uncommitted frames into the WAL.
    func rollback(using random: inout SeededGenerator) throws {
        let connection = connections.randomElement(using: &random)!
        let bytes = Bool.random(using: &random) ? 5000 : Int.random(in: 1_000_000...4_000_000, using: &random)
        try connection.execute(
            "BEGIN IMMEDIATE; INSERT INTO items(name, data) VALUES ('rolled back', randomblob(\(bytes))); UPDATE meta SET k = -1;"
        )
        try connection.execute("ROLLBACK")
        count("rolled back")
    }

    /// VACUUM rewrites the whole file in one commit without changing the content.
    func vacuum(using random: inout SeededGenerator) throws {
        try settleLateLanding()
        let connection = connections.randomElement(using: &random)!
        let start = Self.nowMs()
        try connection.execute("VACUUM")
        let end = Self.nowMs()
        oracle.append(OracleCommit(k: lastK, hash: oracle.last!.hash, startMs: start, endMs: end))
        inDoubt = nil  // Its frames went over the WAL's tail.
        count("vacuums")
    }

    func setAutocheckpoint(using random: inout SeededGenerator) throws {
        let connection = connections.randomElement(using: &random)!
        let pages = [0, 10, 100, 1000].randomElement(using: &random)!
        _ = try connection.scalarInt("PRAGMA wal_autocheckpoint = \(pages)")
        count("autocheckpoint changes")
    }

    /// An application checkpoint of a random mode; busy is a normal outcome.
    func checkpoint(using random: inout SeededGenerator) throws {
        let connection = connections.randomElement(using: &random)!
        let modes: [Connection.CheckpointMode] = [.passive, .full, .restart, .truncate]
        let mode = modes.randomElement(using: &random)!
        try connection.setBusyTimeout(milliseconds: 1000)
        defer { try? connection.setBusyTimeout(milliseconds: 10_000) }
        do {
            _ = try connection.checkpoint(mode)
            count("app checkpoints \(mode)")
        } catch let error as SQLiteError where error.isBusy {
            count("app checkpoints busy")
        }
    }

    /// A PASSIVE checkpoint with the connections kept (the WAL stays, all of it copied into the
    /// file); returns whether it copied every frame of a WAL that has some.
    func backfillWAL() throws -> Bool {
        releaseRead(force: true)
        let result = try connections[0].checkpoint(.passive)
        count("app checkpoints passive")
        return result.walFrames > 0 && result.checkpointedFrames == result.walFrames
    }

    /// A read transaction held open for a while (a report, a backup, a slow request): no
    /// checkpoint can restart the WAL past it meanwhile, the agent's neither.
    func holdRead(milliseconds: UInt64) throws {
        guard reader == nil else { return }
        let connection = try Self.open(path)
        try connection.execute("BEGIN")
        _ = try connection.scalarInt("SELECT count(*) FROM items")
        reader = (connection, Self.nowMs() + milliseconds)
        count("read transactions held")
    }

    /// Ends the held read transaction once its time is up, or now when `force`.
    func releaseRead(force: Bool = false) {
        guard let reader, force || Self.nowMs() >= reader.untilMs else { return }
        try? reader.connection.execute("COMMIT")
        reader.connection.close()
        self.reader = nil
    }

    /// The app restarts: every connection closes (the last one checkpoints and deletes the WAL
    /// when nobody else has the database open) and opens again.
    func restart() throws {
        releaseRead(force: true)
        for connection in connections { connection.close() }
        connections = try connections.map { _ in try Self.open(path) }
        count("app restarts")
    }

    /// Records a state; every caller wrote it over the WAL's tail, or reset the WAL, so a commit
    /// in doubt can no longer land.
    func record(k: Int64, connection: Connection, startMs: UInt64, endMs: UInt64) throws {
        oracle.append(
            OracleCommit(k: k, hash: try ContentHash.of(connection: connection), startMs: startMs, endMs: endMs))
        nextK = k + 1
        inDoubt = nil
    }

    /// After another process was killed in its commit of `k`: records it if it landed, else
    /// keeps it in doubt.
    func settleInDoubt(k: Int64, startMs: UInt64) throws -> Bool {
        let connection = connections[0]
        let current = try connection.scalarInt("SELECT k FROM meta") ?? -1
        guard current == k else {
            inDoubt = (k, startMs)
            return false
        }
        try record(k: k, connection: connection, startMs: startMs, endMs: Self.nowMs())
        return true
    }

    /// Records the commit in doubt if a wal-index recovery published it since: called before
    /// anything that writes or takes the next `k`.
    func settleLateLanding() throws {
        guard let inDoubt, let connection = connections.first,
            try connection.scalarInt("SELECT k FROM meta") == inDoubt.k
        else { return }
        try record(k: inDoubt.k, connection: connection, startMs: inDoubt.startMs, endMs: Self.nowMs())
        count("app killed in COMMIT (landed later: a wal-index recovery published it)")
    }

    var pendingK: Int64 { nextK }

    /// Closes every connection, checkpoints the whole WAL into the database file (the agent's
    /// readers move within a poll interval), runs `body` with no connection of this process open
    /// (closing a descriptor of the file would drop their locks), and opens the connections again.
    private func withWALCheckpointed(_ body: () throws -> Void) throws {
        releaseRead(force: true)
        for connection in connections { connection.close() }
        connections = []
        defer { connections = (try? (0..<3).map { _ in try Self.open(path) }) ?? [] }
        let connection = try Self.open(path)
        try Self.truncateCheckpoint(connection)
        connection.close()
        try body()
    }

    /// Checkpoints the whole WAL and truncates it on `connection`, retrying while the agent's
    /// reader holds it (it moves within a poll interval).
    private static func truncateCheckpoint(_ connection: Connection) throws {
        try connection.setBusyTimeout(milliseconds: 1000)
        defer { try? connection.setBusyTimeout(milliseconds: 10_000) }
        // A connection knows it is in WAL mode only once it has read the database.
        _ = try connection.scalarInt("SELECT count(*) FROM sqlite_master")
        var lastError = ""
        for _ in 0..<100 {
            do {
                let result = try connection.checkpoint(.truncate)
                if result.walFrames == 0 { return }
                lastError = "\(result)"
            } catch {
                lastError = "\(error)"
            }
            usleep(20_000)
        }
        throw WalshipError(.internal, "the TRUNCATE checkpoint never succeeded: \(lastError)")
    }

    /// Checkpoints the whole WAL and truncates it (the application's connections close and open
    /// again): the wal-index then shows no frames.
    func truncateWAL() throws {
        try withWALCheckpointed {}
    }

    /// Saves a copy of the database file with every commit in it (for `overwriteInPlace`).
    func saveCopy(to copy: String) throws {
        try withWALCheckpointed {
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
        }
        count("copies saved")
    }

    /// How a saved copy put back in place compares with the database now.
    enum CopyFit {
        /// No larger: put back padded with zeros to the file's current size, as SQLite needs (its
        /// wal-index keeps the database size of the last commit while any connection, the agent's
        /// included, has the file open; a file more than 64 KiB shorter makes its next checkpoint
        /// fail with SQLITE_CORRUPT). The page count in page 1 still says the copy's size.
        case fits
        /// Larger: SQLite reports the database malformed until every connection has closed and the
        /// wal-index is built again from the file.
        case larger
    }

    /// How a saved copy compares with the database now, or nil when there is none. What counts
    /// is the size SQLite reads the database with (its wal-index keeps the last commit's page
    /// count), not the file's: the file can be longer.
    func fit(of copy: String) -> CopyFit? {
        guard let copySize = FileSystem.size(copy), let pages = try? connections.first?.scalarInt("PRAGMA page_count"),
            let pageSize = try? connections.first?.pageSize()
        else { return nil }
        return copySize <= pages * Int64(pageSize) ? .fits : .larger
    }

    /// Overwrites the database file in place (same inode, as `cp old.db app.db` does) with a
    /// copy saved earlier, whose `meta.k` is first set to a fresh value: the application's state
    /// goes back behind SQLite's back, and the oracle records it as a new state. A larger copy
    /// leaves every connection of the application closed until `whileClosed` returns (the
    /// wal-index must be built again from the file).
    func overwriteInPlace(with copy: String, whileClosed: () -> Void = {}) throws {
        try settleLateLanding()
        let k = nextK
        let editor = try Connection(path: copy)
        try editor.execute("UPDATE meta SET k = \(k)")
        editor.close()  // The last connection: the copy's WAL goes into the file.
        let start = Self.nowMs()
        try withWALCheckpointed {
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: copy)))
            let current = FileSystem.size(path) ?? 0
            if Int64(bytes.count) < current { bytes += [UInt8](repeating: 0, count: Int(current) - bytes.count) }
            // Never shorter meanwhile: no truncation (the bytes cover the whole file).
            let file = try LocalFile(path: path, flags: O_WRONLY)
            try file.write(bytes)
            try file.sync()
            try file.close()
            whileClosed()
        }
        try record(k: k, connection: connections[0], startMs: start, endMs: Self.nowMs())
    }

    /// The first half of a copy put back while the application keeps its connections and its
    /// WAL (as a `cp old.db app.db` beside a running application does): the WAL checkpointed and
    /// truncated with the connections open, then one recorded commit that writes only `meta`'s
    /// page. Returns that commit's oracle index, or nil when the commit wrote other pages too or
    /// the copy keeps `meta` elsewhere (then a copy put back would mix two databases: the event
    /// is skipped, the commit stays an ordinary one).
    func prepareWALAlivePutBack(copy: String) throws -> Int? {
        releaseRead(force: true)
        try settleLateLanding()
        try Self.truncateCheckpoint(connections[0])
        let k = nextK
        let start = Self.nowMs()
        try connections[0].execute("BEGIN IMMEDIATE; UPDATE meta SET k = \(k); COMMIT;")
        try record(k: k, connection: connections[0], startMs: start, endMs: Self.nowMs())
        count("commits")
        let metaPage = try connections[0].scalarInt("SELECT rootpage FROM sqlite_schema WHERE name = 'meta'")
        let editor = try Connection(path: copy)
        defer { editor.close() }
        guard try editor.scalarInt("SELECT rootpage FROM sqlite_schema WHERE name = 'meta'") == metaPage,
            let metaPage, try Self.walPages(path + "-wal") == [metaPage]
        else { return nil }
        // Read from the file or from the WAL, `meta`'s page then says the same.
        try editor.execute("UPDATE meta SET k = \(k)")
        return oracle.count - 1
    }

    /// The page numbers of the WAL's frames.
    private static func walPages(_ walPath: String) throws -> Set<Int64> {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: walPath)))
        guard bytes.count >= 32 else { return [] }
        let pageSize = Int(bytes[8]) << 24 | Int(bytes[9]) << 16 | Int(bytes[10]) << 8 | Int(bytes[11])
        var pages: Set<Int64> = []
        var offset = 32
        while offset + 24 + pageSize <= bytes.count {
            pages.insert(
                Int64(bytes[offset]) << 24 | Int64(bytes[offset + 1]) << 16 | Int64(bytes[offset + 2]) << 8
                    | Int64(bytes[offset + 3]))
            offset += 24 + pageSize
        }
        return pages
    }

    /// The second half: the copy (prepared by `prepareWALAlivePutBack`) written over the
    /// database in place while the connections stay open and the WAL keeps its frame; the state
    /// the application now reads is recorded (under the same `k` as the commit before: a
    /// different content). The connections are replaced by new ones, whose page caches never
    /// held the overwritten file's pages.
    func putBackKeepingWAL(copy: String, in directory: TemporaryDirectory) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: copy))
        let current = Int(FileSystem.size(path) ?? 0)
        if bytes.count < current { bytes += Data(count: current - bytes.count) }
        let padded = directory.file("padded-copy.db")
        try bytes.write(to: URL(fileURLWithPath: padded))
        defer { try? FileManager.default.removeItem(atPath: padded) }
        let start = Self.nowMs()
        // Another process writes it: closing a descriptor of the file in this one would drop the
        // connections' locks.
        let dd = try CommandRunner.run(
            "/bin/dd", ["if=\(padded)", "of=\(path)", "bs=1M", "conv=notrunc,fsync", "status=none"])
        guard dd.status == 0 else { throw WalshipError(.internal, "dd failed: \(dd.stderr)") }
        releaseRead(force: true)
        let fresh = try (0..<connections.count).map { _ in try Self.open(path) }
        // Read first: a connection that never read holds no lock, and closing the last one that
        // did would checkpoint the WAL and delete it when no agent runs.
        for connection in fresh { _ = try connection.scalarInt("SELECT count(*) FROM sqlite_schema") }
        for connection in connections { connection.close() }
        connections = fresh
        let check = try connections[0].textColumn("PRAGMA quick_check")
        guard check == ["ok"] else {
            throw WalshipError(.internal, "the copy put back reads as a broken database: \(check.prefix(3))")
        }
        guard try connections[0].scalarInt("SELECT k FROM meta") == lastK else {
            throw WalshipError(.internal, "the copy put back does not read meta.k \(lastK)")
        }
        try record(k: lastK, connection: connections[0], startMs: start, endMs: Self.nowMs())
        count("copies put back keeping the WAL")
    }

    /// The oracle as text, one commit per line: index, k, start ms, end ms, content hash.
    func writeOracle(to path: String) throws {
        let lines = oracle.enumerated().map { "\($0)\t\($1.k)\t\($1.startMs)\t\($1.endMs)\t\($1.hash)" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func close() {
        releaseRead(force: true)
        for connection in connections { connection.close() }
        connections = []
    }
}
