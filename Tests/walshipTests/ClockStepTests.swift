import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 16, item 2: the agent's wall clock steps back while it runs.
    @Suite("a wall clock step")
    struct ClockStepTests {
        @Test(
            "a backward step of the agent's wall clock never makes restore --at return commits made after the target"
        )
        func backwardStep() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 0)
            let app = try Connection(path: database)
            defer { app.close() }
            let shift = try WallClockShift(directory: directory)
            let agent = try AgentProcess(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"), "--sync-interval", "200ms",
                ], logPath: directory.file("agent.log"), environment: shift.environment)
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            // Each commit's real start and end (this process's clock is not shifted).
            var commits: [(startMs: Int64, endMs: Int64)] = []
            func commit() throws {
                let start = Int64(Date().timeIntervalSince1970 * 1000)
                try LedgerDatabase.commitNext(on: app)
                commits.append((start, Int64(Date().timeIntervalSince1970 * 1000)))
            }
            for _ in 0..<20 {
                try commit()
                try await Task.sleep(for: .milliseconds(50))
            }
            let stepMs = Int64(Date().timeIntervalSince1970 * 1000)
            try shift.set(milliseconds: -3_600_000)
            for _ in 0..<60 {
                try commit()
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(agent.waitForLog("the wall clock stepped back"), "\(agent.log)")
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            for offset in [Int64(500), 1500, 2500] {
                let target = stepMs + offset
                let restored = try ReplicateCommandTests.restore(
                    directory, ["--at", Timestamp.format(milliseconds: UInt64(target))], to: "\(offset).db")
                #expect(restored.status == 0, "\(restored.stderr)")
                let count = try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(offset).db"))
                // A commit is observed at most one poll (100 ms) after it ends: 5x margin.
                let surelyBefore = Int64(commits.filter { $0.endMs <= target - 500 }.count)
                let startedBefore = Int64(commits.filter { $0.startMs <= target }.count)
                #expect(
                    count >= surelyBefore && count <= startedBefore,
                    "--at step+\(offset) ms restored \(count) commits; \(surelyBefore) ended 500 ms before it, \(startedBefore) had started by then"
                )
            }
        }
    }
}
