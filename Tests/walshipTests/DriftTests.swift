import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 14, item 1: a database file changed behind SQLite while the agent runs.
    @Suite("database file changed behind SQLite")
    struct DriftTests {
        static func sqlite(_ database: String, _ sql: String) throws {
            let sqlite3 = try #require(CommandRunner.which("sqlite3"), "sqlite3 is missing: run scripts/setup")
            let output = try CommandRunner.run(sqlite3, [database, sql])
            #expect(output.status == 0, "\(sql): \(output.stderr)")
        }

        static func rows(_ path: String) throws -> (count: Int64, tag: String) {
            let connection = try Connection(path: path, mode: [.readOnly])
            defer { connection.close() }
            return (
                try connection.scalarInt("SELECT count(*) FROM t") ?? -1,
                try connection.scalarText("SELECT tag FROM meta") ?? ""
            )
        }

        /// The reproduction of issue 14: 60 rows, a TRUNCATE checkpoint and a copy, 60 more rows,
        /// a TRUNCATE checkpoint and the copy put back over the database in place (same inode),
        /// then one more commit, while the agent runs.
        @Test(
            "a database overwritten in place with an older copy (cp: same inode) while the agent runs ends the generation; the latest restore is the application's database, not a mix"
        )
        func overwrittenInPlace() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try Self.sqlite(
                database,
                "PRAGMA journal_mode=WAL;CREATE TABLE t(id INTEGER PRIMARY KEY,v BLOB);CREATE TABLE meta(tag);INSERT INTO meta VALUES('orig')"
            )
            let agent = try ReplicateCommandTests.agent(directory, extra: ["--sync-interval", "1s"])
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            for _ in 0..<60 { try Self.sqlite(database, "INSERT INTO t(v) VALUES(randomblob(700))") }
            try await Task.sleep(for: .milliseconds(1500))
            try Self.sqlite(database, "PRAGMA busy_timeout=5000;PRAGMA wal_checkpoint(TRUNCATE)")
            try FileManager.default.copyItem(atPath: database, toPath: directory.file("rollback.db"))
            for _ in 0..<60 { try Self.sqlite(database, "INSERT INTO t(v) VALUES(randomblob(700))") }
            try await Task.sleep(for: .milliseconds(1500))
            try Self.sqlite(database, "PRAGMA busy_timeout=5000;PRAGMA wal_checkpoint(TRUNCATE)")
            let copy = try #require(FileManager.default.contents(atPath: directory.file("rollback.db")))
            let inode = FileIdentity(path: database)
            let file = try LocalFile(path: database, flags: O_WRONLY | O_TRUNC)
            try file.write(Array(copy))
            try file.close()
            #expect(FileIdentity(path: database) == inode, "the copy went in place")
            try Self.sqlite(database, "UPDATE meta SET tag='after-rollback'")
            #expect(agent.waitForLog("the database file changed behind SQLite"), "\(agent.log.suffix(3000))")
            #expect(agent.waitForLog("snapshot taken", after: "changed behind SQLite"), "\(agent.log.suffix(3000))")
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            let restored = try Self.rows(directory.file("latest.db"))
            #expect(restored.count == 60 && restored.tag == "after-rollback", "\(restored)")
            let application = try Self.rows(database)
            #expect(restored.count == application.count && restored.tag == application.tag)
        }

        @Test("an unrelated database copied over the live one in place starts a new generation whose points restore")
        func unrelatedDatabaseInPlace() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 200)
            let other = directory.file("other.db")
            try Self.sqlite(
                other,
                "PRAGMA journal_mode=WAL;CREATE TABLE t(id INTEGER PRIMARY KEY,v BLOB);CREATE TABLE meta(tag);INSERT INTO meta VALUES('other');INSERT INTO t(v) VALUES(randomblob(100))"
            )
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            try Self.sqlite(database, "PRAGMA busy_timeout=5000;PRAGMA wal_checkpoint(TRUNCATE)")
            let copy = try #require(FileManager.default.contents(atPath: other))
            let file = try LocalFile(path: database, flags: O_WRONLY | O_TRUNC)
            try file.write(Array(copy))
            try file.close()
            #expect(agent.waitForLog("the database file changed behind SQLite"), "\(agent.log.suffix(3000))")
            #expect(agent.waitForLog("snapshot taken", after: "changed behind SQLite"), "\(agent.log.suffix(3000))")
            try Self.sqlite(database, "INSERT INTO t(v) VALUES(randomblob(100))")
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try Self.rows(directory.file("latest.db")).count == 2)
        }
    }
}
