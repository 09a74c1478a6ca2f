import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    @Suite("walship replicate at the edges (no WAL at both ends, snapshots under restore, one agent per database)")
    struct EdgeCaseTests {
        @Test(
            "--once runs with no WAL at both ends (the app closed its last connection) ship the commits in between as one transaction read from the file, never a silent gap"
        )
        func noWALAtBothEndsIsNotContinuity() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 0)
            func appSession(_ commits: Int) throws {
                let app = try Connection(path: database)
                for _ in 0..<commits { try LedgerDatabase.commitNext(on: app) }
                app.close()  // The last connection: SQLite checkpoints and deletes -wal.
            }
            try appSession(10)
            #expect(!FileSystem.exists(database + "-wal"))
            var run = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(run.wait() == 0, "\(run.log.suffix(2000))")
            try appSession(300)
            run = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(run.wait() == 0, "\(run.log.suffix(2000))")
            #expect(!run.log.contains("new generation"), "\(run.log.suffix(2000))")
            #expect(run.log.contains("shipped as one transaction read from the database file"))
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 310)
            // The first run's point is still there, exactly.
            let first = try ReplicateCommandTests.restore(directory, ["--txid", "0"], to: "first.db")
            #expect(first.status == 0, "\(first.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("first.db")) == 10)
        }

        @Test(
            "a wal-index header left inconsistent while the application is idle (a writer killed mid-update) is mended by the agent within seconds, with no new generation, and the next commit ships"
        )
        func inconsistentWALIndexIsMended() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, agent) = try ReplicateCommandTests.replicatedLedger(directory, rows: 5)
            defer { agent.stop() }
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            try await agent.waitUntilShipped(commitsAfterSnapshot: 5, replicaDirectory: directory.file("replica"))
            app.close()  // Idle: no connection of the application would mend the header.
            // The wal-index header is kept twice (bytes 0-47 and 48-95 of -shm); a writer killed
            // between the two updates leaves them different, which every read then sees.
            let shm = try FileHandle(forUpdating: URL(fileURLWithPath: database + "-shm"))
            try shm.seek(toOffset: 48 + 20)
            let byte = try #require(try shm.read(upToCount: 1))
            try shm.seek(toOffset: 48 + 20)
            try shm.write(contentsOf: Data([byte[0] ^ 0xFF]))
            try shm.close()
            var mended = false
            for _ in 0..<100 where !mended {  // At most 10 s; the agent mends it after about 1 s.
                try await Task.sleep(for: .milliseconds(100))
                let header = try Data(contentsOf: URL(fileURLWithPath: database + "-shm")).prefix(96)
                mended = header.prefix(48) == header.suffix(48)
            }
            #expect(mended, "\(agent.log.suffix(2000))")
            #expect(
                agent.log.components(separatedBy: "new generation").count == 2,
                "only the first: \(agent.log.suffix(2000))")
            let again = try Connection(path: database)
            defer { again.close() }
            try LedgerDatabase.commitNext(on: again)
            try await agent.waitUntilShipped(commitsAfterSnapshot: 6, replicaDirectory: directory.file("replica"))
            #expect(agent.stop() == 0)
            let restored = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db"))
                    == (try LedgerDatabase.verifiedTransactionCount(at: database)))
        }

        @Test("restores of the latest point while snapshots are being taken every second always succeed")
        func latestRestoreDuringSnapshots() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 100)
            let agent = try ReplicateCommandTests.agent(
                directory, extra: ["--snapshot-interval", "1s", "--sync-interval", "700ms"])
            #expect(agent.waitForLog("snapshot taken"))
            let writer = try WriterProcess(
                script: WALBoundTests.writerScript, database: database, intervalMilliseconds: 5)
            for attempt in 0..<12 {
                try await Task.sleep(for: .milliseconds(350))  // Spreads the restores over the writer's run.
                let output = try ReplicateCommandTests.restore(directory, [], to: "latest-\(attempt).db")
                #expect(output.status == 0, "attempt \(attempt): \(output.stderr)")
                if output.status == 0 {
                    _ = try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest-\(attempt).db"))
                }
            }
            _ = try writer.stop()
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            #expect(agent.log.components(separatedBy: "snapshot taken").count > 3)
        }
    }
}
