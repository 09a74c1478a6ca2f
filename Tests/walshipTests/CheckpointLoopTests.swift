import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Found by review: a WAL longer than wal-max-frames stays that long (SQLite restarts it at
    /// the next write), so an agent that asked for a checkpoint whenever it saw such a WAL ran
    /// RESTART checkpoints back to back, each taking the writer lock, while the app was idle.
    @Suite("agent checkpoints")
    struct CheckpointLoopTests {
        /// An empty ledger database, an application connection without autocheckpoints, and an
        /// agent with `--wal-max-frames walMaxFrames` logging at debug level, started.
        static func start(
            _ directory: TemporaryDirectory, walMaxFrames: Int
        ) throws -> (database: String, app: Connection, agent: AgentProcess) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 0)
            let app = try Connection(path: database)
            try app.execute("PRAGMA wal_autocheckpoint=0")
            let agent = try CLIIntegration.ReplicateCommandTests.agent(
                directory, extra: ["--wal-max-frames", String(walMaxFrames), "--log-level", "debug"])
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            return (database, app, agent)
        }

        @Test(
            "after a transaction longer than wal-max-frames, an idle application sees one RESTART checkpoint, not a loop"
        )
        func noCheckpointLoop() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try Self.start(directory, walMaxFrames: 300)
            defer { app.close() }
            // One transaction of about 500 pages (a 2 MB row in overflow pages).
            try LedgerDatabase.commitNext(on: app, payloadBytes: 2_000_000)
            #expect(agent.waitForLog("restart checkpoint"), "\(agent.log.suffix(3000))")
            let before = agent.cpuSeconds
            try await Task.sleep(for: .seconds(3))  // Kept: a measurement of the idle agent.
            let idle = agent.cpuSeconds - before
            let restarts = agent.log.components(separatedBy: "restart checkpoint").count - 1
            #expect(restarts <= 3, "\(restarts) RESTART checkpoints while the application was idle")
            #expect(idle < 0.5, "the idle agent used \(idle) CPU seconds in 3 s")
            // The next write restarts the WAL; replication goes on.
            try LedgerDatabase.commitNext(on: app)
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let restored = try CLIIntegration.ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 2)
        }

        @Test(
            "an application read transaction that keeps RESTART from finishing for a second makes the agent wait between attempts (250 ms doubling to 5 s), not retry back to back holding the writer lock; once it ends, the WAL restarts"
        )
        func busyRestartBacksOff() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, agent) = try Self.start(directory, walMaxFrames: 100)
            defer { app.close() }
            try app.setBusyTimeout(milliseconds: 10_000)
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: app) }
            // A reader of the application holds a snapshot; the WAL then grows past 100 frames.
            let reader = try Connection(path: database)
            defer { reader.close() }
            try reader.execute("BEGIN")
            _ = try reader.scalarInt("SELECT count(*) FROM ledger")
            for _ in 0..<150 { try LedgerDatabase.commitNext(on: app) }
            #expect(agent.waitForLog("restart checkpoint busy"), "\(agent.log.suffix(3000))")
            try await Task.sleep(for: .seconds(10))  // Kept: a measurement, busy RESTARTs in 10 s.
            // Back to back (one every 50 ms) for the first second, then after 0.25, 0.5, 1, 2, 4
            // s: at most about 26 in 10 s (back to back throughout: about 200).
            let busy = agent.log.components(separatedBy: "restart checkpoint busy").count - 1
            #expect(busy <= 60, "\(busy) busy RESTART checkpoints in 10 s")
            #expect(agent.log.contains("restart checkpoint waits for a reader"), "\(agent.log.suffix(3000))")
            // The application's writer is not held up meanwhile.
            let clock = ContinuousClock()
            let started = clock.now
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: app) }
            #expect(clock.now - started < .seconds(5), "20 commits took \(clock.now - started)")
            // The reader ends: a RESTART succeeds within the longest wait (5 s, with margin).
            try reader.execute("COMMIT")
            #expect(agent.waitForLog("restart checkpoint lock_ms", timeout: 30), "\(agent.log.suffix(3000))")
            try LedgerDatabase.commitNext(on: app)
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let restored = try CLIIntegration.ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 191)
        }

        /// Issue 14 (review): overlapping read transactions of the application (1.6 s reports
        /// every 0.8 s) keep moving the oldest reader, so "one reader held for a second" never
        /// held and busy RESTARTs followed each other, each holding the writer lock.
        @Test(
            "overlapping application read transactions make the agent wait between busy RESTART checkpoints at once"
        )
        func overlappingReadersBackOff() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, agent) = try Self.start(directory, walMaxFrames: 100)
            defer { app.close() }
            try app.setBusyTimeout(milliseconds: 10_000)
            for _ in 0..<150 { try LedgerDatabase.commitNext(on: app) }
            var readers: [(connection: Connection, started: ContinuousClock.Instant)] = []
            let clock = ContinuousClock()
            let started = clock.now
            var lastReader = started - .seconds(1)
            var commits = 0
            while clock.now - started < .seconds(8) {
                if clock.now - lastReader >= .milliseconds(800) {
                    let reader = try Connection(path: database)
                    try reader.execute("BEGIN")
                    _ = try reader.scalarInt("SELECT count(*) FROM ledger")
                    readers.append((reader, clock.now))
                    lastReader = clock.now
                }
                for (index, reader) in readers.enumerated().reversed()
                where clock.now - reader.started >= .milliseconds(1600) {
                    try reader.connection.execute("COMMIT")
                    reader.connection.close()
                    readers.remove(at: index)
                }
                try LedgerDatabase.commitNext(on: app)
                commits += 1
                try await Task.sleep(for: .milliseconds(20))  // Paces the commits.
            }
            for reader in readers {
                try reader.connection.execute("COMMIT")
                reader.connection.close()
            }
            // Waiting at once after each busy RESTART: 0.25, 0.5, 1, 2, 4 s, so about 6 in 8 s
            // (back to back, every 50 ms, it was about 100); a bound with a wide margin.
            let busy = agent.log.components(separatedBy: "restart checkpoint busy").count - 1
            #expect(busy <= 30, "\(busy) busy RESTART checkpoints in 8 s")
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let restored = try CLIIntegration.ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == Int64(150 + commits))
        }
    }
}
