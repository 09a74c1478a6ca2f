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
            // The 50 ms pauses spread the commit times around the step, for restore --at.
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

extension CLIIntegration.ClockStepTests {
    @Test(
        "a wall clock step during the agent's poll pause neither stalls it (a step back) nor makes it spin (a step forward): pauses run on the monotonic clock"
    )
    func stepDuringPause() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("app.db")
        try LedgerDatabase.create(at: database, rows: 0)
        let app = try Connection(path: database)
        defer { app.close() }
        let shift = try WallClockShift(directory: directory)
        let agent = try AgentProcess(
            [
                "replicate", database, CLIIntegration.ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"),
            ], logPath: directory.file("agent.log"), environment: shift.environment)
        #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
        #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
        let snapshot = try agent.txidAfterSnapshot(0)
        // The shim moves what the agent reads from the wall clock, not the kernel's timers: an
        // offset ahead is what a wait on a wall-clock deadline sees when the clock steps back.
        try shift.set(milliseconds: 600_000)
        for _ in 0..<10 {
            try LedgerDatabase.commitNext(on: app)
            try await Task.sleep(for: .milliseconds(50))  // Paces the commits.
        }
        // The agent read the commits on the shifted clock and polls on.
        try await agent.waitUntilShipped(txid: snapshot + 10, replicaDirectory: directory.file("replica"))
        // A step the other way: a wall-clock deadline would be in the past at once.
        try shift.set(milliseconds: -600_000)
        // Kept: a measurement. The window starts once pauses begun before the step (100 ms) ended,
        // and an idle agent must stay idle for 3 s.
        try await Task.sleep(for: .milliseconds(500))
        let before = agent.cpuSeconds
        try await Task.sleep(for: .seconds(3))
        let idle = agent.cpuSeconds - before
        // Idle polling every 100 ms costs a few hundredths of a second here; spinning, a whole one.
        #expect(idle < 0.5, "the idle agent used \(idle) CPU seconds in 3 s: \(agent.log.suffix(2000))")
        let started = ContinuousClock.now
        let status = agent.stop(timeout: 120)
        let took = ContinuousClock.now - started
        #expect(status == 0, "\(agent.log.suffix(3000))")
        // A stop takes well under a second; a pause on a wall-clock deadline took 10 minutes.
        #expect(took < .seconds(15), "the stop took \(took)")
        let restored = try CLIIntegration.ReplicateCommandTests.restore(directory, [], to: "latest.db")
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 10)
    }
}
