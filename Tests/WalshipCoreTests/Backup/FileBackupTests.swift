import Foundation
import Logging
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("File backup")
struct FileBackupTests {
    let logger = Logger(label: "test")

    @Test("backup writes a verified copy and leaves no temporary file")
    func backupWritesVerifiedCopy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 300)
        let destination = directory.file("backup.db")
        let report = try FileBackup(options: .init(), logger: logger).run(source: source, destination: destination)
        #expect(try LedgerDatabase.verifiedTransactionCount(at: destination) == 300)
        #expect(report.journalMode == "wal")
        #expect(report.outputBytes == FileSystem.size(destination))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.contains("walship")
        }
        #expect(leftovers.isEmpty)
    }

    @Test("an existing destination is refused without force and replaced with force")
    func existingDestinationNeedsForce() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 10)
        let destination = directory.file("backup.db")
        _ = FileManager.default.createFile(atPath: destination, contents: Data("keep me".utf8))
        #expect {
            _ = try FileBackup(options: .init(), logger: logger).run(source: source, destination: destination)
        } throws: { ($0 as? WalshipError)?.code == .outputExists }
        #expect(try String(contentsOfFile: destination, encoding: .utf8) == "keep me")

        var options = FileBackup.Options()
        options.force = true
        _ = try FileBackup(options: options, logger: logger).run(source: source, destination: destination)
        #expect(try LedgerDatabase.verifiedTransactionCount(at: destination) == 10)
    }

    @Test("a stale -wal beside a missing destination is refused, because SQLite would replay it")
    func staleWALBesideDestinationIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 10)
        let destination = directory.file("backup.db")
        _ = FileManager.default.createFile(atPath: destination + "-wal", contents: Data(count: 100))
        #expect {
            _ = try FileBackup(options: .init(), logger: logger).run(source: source, destination: destination)
        } throws: { ($0 as? WalshipError)?.code == .outputExists }
        #expect(!FileSystem.exists(destination))
    }

    @Test("a missing source fails with databaseUnusable")
    func missingSourceFails() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect {
            _ = try FileBackup(options: .init(), logger: logger).run(
                source: directory.file("missing.db"), destination: directory.file("out.db"))
        } throws: { ($0 as? WalshipError)?.code == .databaseUnusable }
        #expect(!FileSystem.exists(directory.file("missing.db")))
    }

    @Test("a file that is not a database fails with databaseUnusable and writes nothing")
    func notADatabaseFails() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("notes.txt")
        _ = FileManager.default.createFile(
            atPath: source, contents: Data(String(repeating: "hello ", count: 2000).utf8))
        #expect {
            _ = try FileBackup(options: .init(), logger: logger).run(
                source: source, destination: directory.file("out.db"))
        } throws: { ($0 as? WalshipError)?.code == .databaseUnusable }
        #expect(!FileSystem.exists(directory.file("out.db")))
    }

    @Test("an unwritable destination directory fails with localIO")
    func unwritableDestinationFails() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 1)
        #expect {
            _ = try FileBackup(options: .init(), logger: logger).run(
                source: source, destination: directory.file("no/such/dir/out.db"))
        } throws: { ($0 as? WalshipError)?.code == .localIO }
    }

    @Test("a rollback-journal source is backed up and its journal mode reported")
    func rollbackJournalSource() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 50, journalMode: "delete")
        let report = try FileBackup(options: .init(), logger: logger).run(
            source: source, destination: directory.file("out.db"))
        #expect(report.journalMode == "delete")
        #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("out.db")) == 50)
    }

    @Test("a gzip backup decompresses to a database that passes the checks")
    func gzipBackupRoundTrips() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 200)
        var options = FileBackup.Options()
        options.codec = .gzip
        _ = try FileBackup(options: options, logger: logger).run(
            source: source, destination: directory.file("out.db.gz"))
        _ = try Compression.decompressFile(
            at: directory.file("out.db.gz"), to: directory.file("plain.db"), codec: .gzip)
        #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("plain.db")) == 200)
    }

    @Test("the backup does not delete the source's -wal when it is the last connection")
    func backupKeepsSourceWAL() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("app.db")
        try LedgerDatabase.create(at: source, rows: 0)
        // Leave committed frames in the WAL with no connection open.
        let app = try Connection(path: source)
        try app.setPersistWAL(true)
        try LedgerDatabase.commitNext(on: app)
        app.close()
        let walSize = FileSystem.size(source + "-wal")
        #expect((walSize ?? 0) > 0)
        _ = try FileBackup(options: .init(), logger: logger).run(source: source, destination: directory.file("out.db"))
        #expect(FileSystem.size(source + "-wal") == walSize)
    }
}
