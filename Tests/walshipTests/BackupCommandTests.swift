import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    @Suite("walship backup")
    struct BackupCommandTests {
        @Test("backup of a database under a concurrent writer process equals the source at one transaction boundary")
        func backupUnderWriter() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let source = directory.file("app.db")
            try LedgerDatabase.create(at: source, rows: 8000, payloadBytes: 1000)
            let writer = BackgroundWriter(path: source, interval: .milliseconds(5))
            let before = writer.commits
            let output = try WalshipBinary.run([
                "backup", source, directory.file("backup.db"), "--step-pages", "16", "--sleep", "1ms",
            ])
            let during = writer.commits - before
            try writer.stop()
            #expect(output.status == 0, "\(output.stderr)")
            #expect(during > 5, "the writer committed \(during) times during the backup")
            let count = try LedgerDatabase.verifiedTransactionCount(at: directory.file("backup.db"))
            #expect(count >= 8000)
            // Progress went to stderr as plain lines (not a terminal), and the summary was logged.
            #expect(output.stderr.contains("backup: 100%"))
            #expect(output.stderr.contains("backup complete"))
            #expect(output.stdout.isEmpty)
        }

        @Test("--quiet prints no progress")
        func quietPrintsNoProgress() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            let output = try WalshipBinary.run([
                "backup", directory.file("app.db"), directory.file("b.db"), "--quiet", "--log-level", "warning",
            ])
            #expect(output.status == 0)
            #expect(!output.stderr.contains("backup:"))
        }

        @Test("exit codes: missing source 3, not a database 3, existing output 5, unwritable output 13, bad flag 2")
        func exitCodes() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let source = directory.file("app.db")
            try LedgerDatabase.create(at: source, rows: 5)
            _ = FileManager.default.createFile(
                atPath: directory.file("text.db"), contents: Data(repeating: 65, count: 4096))
            _ = FileManager.default.createFile(atPath: directory.file("exists.db"), contents: Data("x".utf8))

            let missing = try WalshipBinary.run(["backup", directory.file("nope.db"), directory.file("o1.db")])
            #expect(missing.status == 3)
            #expect(missing.stderr.contains("does not exist"))

            let notDatabase = try WalshipBinary.run(["backup", directory.file("text.db"), directory.file("o2.db")])
            #expect(notDatabase.status == 3)
            #expect(notDatabase.stderr.contains("not a SQLite database"))
            #expect(!FileSystem.exists(directory.file("o2.db")))

            let exists = try WalshipBinary.run(["backup", source, directory.file("exists.db")])
            #expect(exists.status == 5)
            #expect(try String(contentsOfFile: directory.file("exists.db"), encoding: .utf8) == "x")

            let unwritable = try WalshipBinary.run(["backup", source, directory.file("missing-dir/o3.db")])
            #expect(unwritable.status == 13)

            let badFlag = try WalshipBinary.run(["backup", source, directory.file("o4.db"), "--step-pages", "0"])
            #expect(badFlag.status == 2)
            let badDuration = try WalshipBinary.run(["backup", source, directory.file("o5.db"), "--sleep", "soon"])
            #expect(badDuration.status == 2)
            let unknownFlag = try WalshipBinary.run(["backup", source, directory.file("o6.db"), "--bogus"])
            #expect(unknownFlag.status == 2)
        }

        @Test("--gzip writes a file that gzip -d turns into the database")
        func gzipOutputIsStandard() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 100)
            let output = try WalshipBinary.run([
                "backup", directory.file("app.db"), directory.file("b.db.gz"), "--gzip",
            ])
            #expect(output.status == 0, "\(output.stderr)")
            let gunzip = try CommandRunner.run("/bin/gzip", ["-d", directory.file("b.db.gz")])
            #expect(gunzip.status == 0, "\(gunzip.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("b.db")) == 100)
        }

        @Test("--gzip or --zstd into a destination named like a database warns and suggests the right name (issue 16)")
        func compressedUnderADatabaseName() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            for (flag, suffix) in [("--gzip", ".gz"), ("--zstd", ".zst")] {
                let output = try WalshipBinary.run([
                    "backup", directory.file("app.db"), directory.file("b\(suffix).db"), flag,
                ])
                #expect(output.status == 0, "\(output.stderr)")
                #expect(
                    output.stderr.contains("name it '\(directory.file("b\(suffix).db"))\(suffix)'"), "\(output.stderr)")
            }
            let plain = try WalshipBinary.run(["backup", directory.file("app.db"), directory.file("c.db.gz"), "--gzip"])
            #expect(!plain.stderr.contains("name it"), "\(plain.stderr)")
        }

        @Test(
            "a rollback-journal database held by BEGIN EXCLUSIVE: the backup says a writer holds the lock (exit 3) (issue 16)"
        )
        func exclusiveWriter() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10, journalMode: "delete")
            let writer = try Connection(path: directory.file("app.db"))
            defer { writer.close() }
            try writer.execute("BEGIN EXCLUSIVE")
            let output = try WalshipBinary.run(["backup", directory.file("app.db"), directory.file("b.db")])
            try writer.execute("ROLLBACK")
            #expect(output.status == 3, "\(output.stderr)")
            #expect(output.stderr.contains("locked by another connection"), "\(output.stderr)")
            #expect(output.stderr.contains("EXCLUSIVE transaction"), "\(output.stderr)")
        }

        @Test("a rollback-journal source gets the warning that the copy blocks the app's commits")
        func rollbackJournalWarning() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10, journalMode: "delete")
            let output = try WalshipBinary.run(["backup", directory.file("app.db"), directory.file("b.db")])
            #expect(output.status == 0)
            #expect(output.stderr.contains("blocks the app's commits"))
        }
    }

    @Suite("walship version")
    struct VersionCommandTests {
        @Test("version prints walship and library versions and warns about the WAL-reset bug")
        func versionPrintsLibraries() throws {
            let output = try WalshipBinary.run(["version"])
            #expect(output.status == 0)
            #expect(output.stdout.contains("walship \(WalshipVersion.current)"))
            #expect(output.stdout.contains("sqlite \(SQLiteLibrary.version)"))
            #expect(output.stdout.contains("zstd "))
            #expect(output.stdout.contains("curl "))
            if SQLiteLibrary.hasWALResetBug() {
                #expect(output.stderr.contains("WAL-reset"))
            }
        }
    }
}
