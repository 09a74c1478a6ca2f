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
        @Test(
            "after a transaction longer than wal-max-frames, an idle application sees one RESTART checkpoint, not a loop"
        )
        func noCheckpointLoop() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 0)
            let app = try Connection(path: database)
            defer { app.close() }
            try app.execute("PRAGMA wal_autocheckpoint=0")
            let agent = try CLIIntegration.ReplicateCommandTests.agent(
                directory, extra: ["--wal-max-frames", "300", "--log-level", "debug"])
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            // One transaction of about 500 pages (a 2 MB row in overflow pages).
            try LedgerDatabase.commitNext(on: app, payloadBytes: 2_000_000)
            #expect(agent.waitForLog("restart checkpoint"), "\(agent.log.suffix(3000))")
            let before = agent.cpuSeconds
            try await Task.sleep(for: .seconds(3))
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
    }
}
