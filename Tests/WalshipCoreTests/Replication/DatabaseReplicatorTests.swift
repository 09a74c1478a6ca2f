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
        let metrics: ReplicationMetrics
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
        return Running(
            directory: directory, plan: plan, replica: replica, stop: stop, metrics: replicator.metrics, task: task)
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
        // Start-up: one LIST, then the first snapshot's PUT, confirmed by the store.
        #expect(
            try await Self.waitFor { running.metrics.current.snapshotsUploaded >= 1 },
            "no snapshot uploaded in 20 s: \(running.plan.operations)")
        let snapshot = running.metrics.current.shippedTxid
        let before = running.plan.requests
        try await Task.sleep(for: .seconds(3))  // Kept: a measurement, no request for 3 s.
        #expect(running.plan.requests == before, "\(running.plan.operations)")
        #expect(running.plan.operations["list", default: 0] == 1)

        // One commit from the app costs one segment PUT, then nothing again.
        let writer = try WriterProcess(
            script: Self.writerScript, database: running.directory.file("app.db"), seconds: 0.01)
        let commits = try writer.wait()
        #expect(commits >= 1)
        #expect(try await Self.waitFor { running.plan.requests > before })
        #expect(
            try await Self.waitFor { running.metrics.current.shippedTxid >= snapshot + UInt64(commits) },
            "txid \(snapshot + UInt64(commits)) not shipped in 20 s: \(running.metrics.current.shippedTxid)")
        let after = running.plan.requests
        try await Task.sleep(for: .seconds(2))  // Kept: a measurement, no request for 2 s.
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
        // The first generation's snapshot is in the store before the outage.
        #expect(
            try await Self.waitFor { running.metrics.current.snapshotsUploaded >= 1 },
            "no snapshot uploaded in 20 s: \(running.plan.operations)")
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

    /// The ledger's transaction count in the replica's latest restore point.
    static func latestCount(_ replica: Replica, _ directory: TemporaryDirectory) async throws -> Int64 {
        let output = directory.file("latest.db")
        let plan = try RestorePlanner(
            inventory: try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        ).plan(.latest)
        _ = try await Restorer(replica: replica, options: .init(), logger: Logger(label: "test")).restore(
            plan, to: output)
        return try LedgerDatabase.verifiedTransactionCount(at: output)
    }

    /// Opens `database` in another process and keeps the connection (no transaction) until the
    /// returned function is called: no connection closing checkpoints and deletes the WAL.
    static func holdOpen(_ database: String) throws -> () -> Void {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: CommandRunner.which("python3") ?? "/usr/bin/python3")
        holder.arguments = [
            "-c",
            "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
                + "db.execute('SELECT n FROM counter').fetchall(); print('open', flush=True); sys.stdin.read()",
            database,
        ]
        let input = Pipe()
        let output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        _ = output.fileHandleForReading.availableData  // "open"
        return {
            try? input.fileHandleForWriting.close()
            holder.waitUntilExit()
        }
    }

    /// Runs `commits` ledger commits and then `checkpoint` (a `PRAGMA wal_checkpoint` mode, if
    /// any) from a separate Python process: its locks are not this process's.
    static func appCommits(_ database: String, _ commits: Int, checkpoint: String? = nil) throws {
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
            for _ in range(int(sys.argv[2])):
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO ledger(id, payload) SELECT n + 1, randomblob(200) FROM counter")
                db.execute("UPDATE counter SET n = n + 1")
                db.execute("COMMIT")
            if len(sys.argv) > 3:
                print(db.execute("PRAGMA wal_checkpoint(%s)" % sys.argv[3]).fetchone())
            """
        let output = try CommandRunner.run(
            CommandRunner.which("python3") ?? "/usr/bin/python3",
            ["-c", script, database, String(commits)] + (checkpoint.map { [$0] } ?? []))
        guard output.status == 0 else { throw WalshipError(.internal, "app process failed: \(output.stderr)") }
    }

    @Test(
        "transactions read in a catch-up whose WAL restarts before the final check are never shipped in the old generation (found by walship-torture, seed 22): it continues by content with one transaction read from the database, or, with no page hashes, starts a new generation",
        arguments: [true, false]
    )
    func catchUpRaceWithWALRestartShipsNothingInOldGeneration(pageHashes: Bool) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("app.db")
        try LedgerDatabase.create(at: database, rows: 10)
        // Another process keeps a connection open throughout, so that no connection closing
        // checkpoints and deletes the WAL between the agent's runs.
        let release = try Self.holdOpen(database)
        defer { release() }

        let replica = Replica(
            store: try FileObjectStore(root: directory.file("replica"), create: true), layout: ReplicaLayout(prefix: "")
        )
        func replicateOnce(afterCatchUpRead: (@Sendable () -> Void)?) async throws -> DatabaseReplicator.Report {
            try await DatabaseReplicator(
                databasePath: database, replica: replica, stateDirectory: directory.file("state"),
                settings: ReplicationSettings(), logger: Logger(label: "test"),
                testHooks: .init(afterCatchUpRead: afterCatchUpRead)
            ).run(once: true, stop: StopSignal())
        }
        try Self.appCommits(database, 2)
        let first = try await replicateOnce(afterCatchUpRead: nil)
        let firstGeneration = try #require(first.generation)

        // While the agent is down: five commits, then a PASSIVE checkpoint that copies them all
        // back. The agent's next first read transaction then needs no WAL frame (slot 0), which
        // does not stop a writer from restarting the WAL.
        try Self.appCommits(database, 5, checkpoint: "PASSIVE")
        if !pageHashes { try FileManager.default.removeItem(atPath: directory.file("state/pages")) }
        // The catch-up reads the five commits; right then, the app commits once more, which
        // restarts the WAL before the agent checks its header again.
        let hookRuns = directory.file("hook-runs")
        let restarted = try await replicateOnce(afterCatchUpRead: {
            try? Self.appCommits(database, 1)
            _ = FileManager.default.createFile(atPath: hookRuns, contents: nil)
        })
        #expect(FileSystem.exists(hookRuns), "the catch-up read the WAL (its recorded position still held)")

        let audit = try await ReplicaAudit.run(replica: replica)
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        // Nothing read in the failed catch-up went into the old generation as such.
        let read = audit.generations[0].transactions.filter { $0.txid > first.lastTxid }
        if pageHashes {
            // The database (the file, and the restarted WAL's frame over it) differs from the
            // shipped state by the six commits: one transaction read from the database.
            #expect(restarted.generation == firstGeneration, "continued by content")
            try #require(audit.generations.count == 1, "\(audit.generations)")
            #expect(read.count == 1 && read.allSatisfy(\.isFromDatabaseFile), "\(read)")
        } else {
            #expect(restarted.generation != firstGeneration, "continuity cannot be proven: a new generation")
            try #require(audit.generations.count == 2, "\(audit.generations)")
            // The old generation ends where the first run left it, and the new generation's first
            // restore point comes after it.
            #expect(read.isEmpty, "\(read)")
            #expect(
                restarted.lastSnapshot?.firstTxid == first.lastTxid + 1,
                "\(String(describing: restarted.lastSnapshot))")
            #expect(audit.generations[1].reason == .continuityLost)
        }
        #expect(audit.generations[0].transactions.allSatisfy { !$0.isLate || $0.isFromDatabaseFile })
        #expect(try await Self.latestCount(replica, directory) == 18)
    }

    @Test(
        "a commit that restarts a WAL the file had all of, while the start's content check reads the file, continues the generation from the restarted WAL (found by review)"
    )
    func commitDuringContentScanRestartingTheWAL() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("app.db")
        try LedgerDatabase.create(at: database, rows: 10)
        try Self.appCommits(database, 2)
        let replica = Replica(
            store: try FileObjectStore(root: directory.file("replica"), create: true), layout: ReplicaLayout(prefix: "")
        )
        func replicateOnce(afterContentScan: (@Sendable () -> Void)? = nil) async throws -> DatabaseReplicator.Report {
            try await DatabaseReplicator(
                databasePath: database, replica: replica, stateDirectory: directory.file("state"),
                settings: ReplicationSettings(), logger: Logger(label: "test"),
                testHooks: .init(afterContentScan: afterContentScan)
            ).run(once: true, stop: StopSignal())
        }
        let first = try await replicateOnce()
        // While the agent is down, the application (its connection kept open) commits into a
        // new WAL and copies all of it into the file: the agent's read transaction then sits on
        // slot 0, which does not keep a writer from restarting the WAL.
        let release = try Self.holdOpen(database)
        defer { release() }
        try Self.appCommits(database, 5, checkpoint: "PASSIVE")
        let second = try await replicateOnce(afterContentScan: {
            do { try Self.appCommits(database, 1) } catch { Issue.record("\(error)") }
        })
        #expect(second.generation == first.generation, "continued by content")
        // The run exits once its start has read the database; the next one continues from the
        // restarted WAL's first frame, which the run recorded, and ships that commit from the WAL.
        let third = try await replicateOnce()
        #expect(third.generation == first.generation, "continued from the restarted WAL")
        let audit = try await ReplicaAudit.run(replica: replica)
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        try #require(audit.generations.count == 1, "\(audit.generations)")
        let after = audit.generations[0].transactions.filter { $0.txid > first.lastTxid }
        #expect(after.map(\.isFromDatabaseFile) == [true, false], "\(after)")
        #expect(try await Self.latestCount(replica, directory) == 18)
    }
}

extension DatabaseReplicatorTests {
    @Test("a state directory pointed at another replica never uploads the old replica's spool there")
    func spoolOfAnotherReplicaIsNotUploaded() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("app.db")
        try LedgerDatabase.create(at: database, rows: 20)
        var settings = ReplicationSettings()
        settings.shutdownTimeout = .milliseconds(500)
        let plan = FaultPlan()
        let old = Replica(
            store: FaultInjectingObjectStore(
                base: try FileObjectStore(root: directory.file("old"), create: true), plan: plan),
            layout: ReplicaLayout(prefix: ""))
        let new = Replica(
            store: try FileObjectStore(root: directory.file("new"), create: true), layout: ReplicaLayout(prefix: ""))
        func once(_ replica: Replica) async throws -> DatabaseReplicator.Report {
            try await DatabaseReplicator(
                databasePath: database, replica: replica, stateDirectory: directory.file("state"), settings: settings,
                logger: Logger(label: "test")
            ).run(once: true, stop: StopSignal())
        }
        // The old replica's store answers the start-up LIST, then refuses every request: the
        // snapshot stays in the spool.
        for request in 2..<10_000 { plan.inject(.slowDown, atRequest: request) }
        let stuck = try await once(old)
        #expect(stuck.pendingObjects > 0)
        do {
            _ = try await once(new)
            Issue.record("the old replica's spool went to the new replica")
        } catch let error as WalshipError {
            #expect(error.code == .usage)
            #expect(error.message.contains("not yet uploaded to \(old.location)"), "\(error.message)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("new")).isEmpty)
        // Back on the old replica, the spool goes up; then the new replica starts its own lineage.
        plan.clear()
        let drained = try await once(old)
        #expect(drained.pendingObjects == 0)
        let moved = try await once(new)
        #expect(moved.pendingObjects == 0)
        #expect(moved.generation != drained.generation)
        let audit = try await ReplicaAudit.run(replica: new)
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        #expect(audit.generations.map(\.generation) == [moved.generation].compactMap { $0 })
        #expect(audit.generations.first?.reason == .firstStart)
    }
}
