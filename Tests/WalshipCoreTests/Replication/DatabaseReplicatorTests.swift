import Foundation
import Logging
import Testing
import WalshipTesting

@testable import WalshipCore

/// Runs a replicator in this process against a counting, fault-injecting store. The
/// application's writes come from another process (`WriterProcess`): POSIX locks belong to the
/// process, so an in-process app connection would share the agent's locks.
@Suite("Database replicator", .serialized)
struct DatabaseReplicatorTests {
    static let writerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("walshipTests/Scripts/ledger_writer.py").path

    struct Running {
        let directory: TemporaryDirectory
        let plan: FaultPlan
        let replica: Replica
        let stop: StopSignal
        let task: Task<DatabaseReplicator.Report, any Error>
    }

    static func start(settings: ReplicationSettings = ReplicationSettings(), rows: Int = 50) throws -> Running {
        let directory = try TemporaryDirectory()
        try LedgerDatabase.create(at: directory.file("app.db"), rows: rows)
        let plan = FaultPlan()
        let store = FaultInjectingObjectStore(
            base: try FileObjectStore(root: directory.file("replica"), create: true), plan: plan)
        let replica = Replica(store: store, layout: ReplicaLayout(prefix: "db"))
        let stop = StopSignal()
        let replicator = DatabaseReplicator(
            databasePath: directory.file("app.db"), replica: replica, stateDirectory: directory.file("state"),
            settings: settings, logger: Logger(label: "test"))
        let task = Task { try await replicator.run(once: false, stop: stop) }
        return Running(directory: directory, plan: plan, replica: replica, stop: stop, task: task)
    }

    static func waitFor(_ timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("an idle database costs no object store requests")
    func idleCostsNothing() async throws {
        var settings = ReplicationSettings()
        settings.syncInterval = .milliseconds(100)
        let running = try Self.start(settings: settings)
        defer { running.directory.remove() }
        // Start-up: one LIST, then the first snapshot's PUT.
        #expect(try await Self.waitFor { running.plan.operations["put", default: 0] >= 1 })
        try await Task.sleep(for: .milliseconds(500))
        let before = running.plan.requests
        try await Task.sleep(for: .seconds(3))
        #expect(running.plan.requests == before, "\(running.plan.operations)")
        #expect(running.plan.operations["list", default: 0] == 1)

        // One commit from the app costs one segment PUT, then nothing again.
        let writer = try WriterProcess(
            script: Self.writerScript, database: running.directory.file("app.db"), seconds: 0.01)
        #expect(try writer.wait() >= 1)
        #expect(try await Self.waitFor { running.plan.requests > before })
        try await Task.sleep(for: .milliseconds(500))
        let after = running.plan.requests
        try await Task.sleep(for: .seconds(2))
        #expect(running.plan.requests == after)
        running.stop.stop()
        let report = try await running.task.value
        #expect(report.pendingObjects == 0)
    }

    @Test("a store outage never blocks the app; a full spool ends the read chain and a new generation follows")
    func outageFillsSpoolThenNewGeneration() async throws {
        var settings = ReplicationSettings()
        settings.syncInterval = .milliseconds(100)
        settings.spoolMaxBytes = 64 * 1024
        let running = try Self.start(settings: settings)
        defer { running.directory.remove() }
        #expect(try await Self.waitFor { running.plan.operations["put", default: 0] >= 1 })
        try await Task.sleep(for: .milliseconds(300))
        running.plan.failNext(1_000_000, with: .slowDown)
        let writer = try WriterProcess(
            script: Self.writerScript, database: running.directory.file("app.db"), intervalMilliseconds: 2,
            payloadBytes: 2000,
            seconds: 3)
        let commits = try writer.wait()
        #expect(commits > 200, "the app kept committing during the outage")
        running.plan.clear()
        // The spool drains, a new generation starts with a snapshot.
        #expect(
            try await Self.waitFor(.seconds(60)) {
                let audit = try await ReplicaAudit.run(replica: running.replica)
                return audit.generations.count == 2 && audit.generations.last!.snapshots > 0
            })
        running.stop.stop()
        let report = try await running.task.value
        #expect(report.pendingObjects == 0)
        let audit = try await ReplicaAudit.run(replica: running.replica)
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        #expect(audit.generations.last?.reason == .spoolFull)
        // Latest restore equals the app.
        let output = running.directory.file("latest.db")
        let plan = try RestorePlanner(
            inventory: try await ReplicaInventory.load(store: running.replica.store, layout: running.replica.layout)
        ).plan(.latest)
        _ = try await Restorer(replica: running.replica, options: .init(), logger: Logger(label: "test")).restore(
            plan, to: output)
        #expect(try LedgerDatabase.verifiedTransactionCount(at: output) == Int64(50 + commits))
    }
}
