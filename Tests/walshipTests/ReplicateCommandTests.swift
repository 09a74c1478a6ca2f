import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

/// An application connection that runs checkpoints of the given modes in a loop (1 s busy
/// timeout, as DESIGN.md asks of apps that run blocking checkpoints), counting outcomes.
final class AppCheckpointer: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let counts = Mutex<(ok: Int, busy: Int, errors: [String])>((0, 0, []))
    private let done = DispatchSemaphore(value: 0)

    init(path: String, modes: [Connection.CheckpointMode], interval: Duration) {
        Thread { [self] in
            defer { done.signal() }
            guard let connection = try? Connection(path: path) else { return }
            try? connection.setBusyTimeout(milliseconds: 1000)
            var index = 0
            while !stopFlag.load(ordering: .relaxed) {
                do {
                    _ = try connection.checkpoint(modes[index % modes.count])
                    counts.withLock { $0.ok += 1 }
                } catch let error as SQLiteError where error.isBusy {
                    counts.withLock { $0.busy += 1 }
                } catch {
                    counts.withLock { $0.errors.append("\(error)") }
                }
                index += 1
                Thread.sleep(forTimeInterval: BackgroundWriter.seconds(interval))
            }
            connection.close()
        }.start()
    }

    func stop() -> (ok: Int, busy: Int, errors: [String]) {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
        return counts.withLock { $0 }
    }
}

extension CLIIntegration {
    @Suite("walship replicate")
    struct ReplicateCommandTests {
        static func replicaURL(_ directory: TemporaryDirectory) -> String { "file://\(directory.file("replica"))" }

        static func agent(_ directory: TemporaryDirectory, extra: [String] = []) throws -> AgentProcess {
            try AgentProcess(
                [
                    "replicate", directory.file("app.db"), replicaURL(directory), "--state-dir",
                    directory.file("state"),
                    "--sync-interval", "200ms", "--log-level", "debug",
                ] + extra, logPath: directory.file("agent.log"))
        }

        /// A ledger database of `rows` rows with an application connection (close it) and an
        /// agent that has taken its first snapshot.
        static func replicatedLedger(
            _ directory: TemporaryDirectory, rows: Int, extra: [String] = []
        ) throws -> (database: String, app: Connection, agent: AgentProcess) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: rows)
            let app = try Connection(path: database)
            let agent = try Self.agent(directory, extra: extra)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            return (database, app, agent)
        }

        static func restore(
            _ directory: TemporaryDirectory, _ extra: [String], to name: String
        ) throws -> CommandRunner.Output {
            try WalshipBinary.run(["restore", replicaURL(directory), "-o", directory.file(name), "--quiet"] + extra)
        }

        @Test(
            "a writer at 100 tx/s across app checkpoints, VACUUM, a 50 MB transaction, kill -9 and an autocheckpoint burst loses nothing"
        )
        func replicationUnderChurn() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 500)
            var agent = try Self.agent(directory)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let writer = BackgroundWriter(path: database, interval: .milliseconds(10))
            let checkpointer = AppCheckpointer(
                path: database, modes: [.truncate, .restart, .full], interval: .milliseconds(300))
            // The phases below each run for a while under the writer and the checkpointer (workload
            // pacing): the test holds whatever the agent has shipped when each one ends.
            try await Task.sleep(for: .seconds(2))

            // VACUUM and a 50 MB transaction from another app connection.
            let app = try Connection(path: database)
            try app.setBusyTimeout(milliseconds: 10_000)
            try app.execute("VACUUM")
            try LedgerDatabase.commitNext(on: app, payloadBytes: 50_000_000)
            try await Task.sleep(for: .seconds(1))

            // kill -9 and restart while the app keeps writing.
            agent.killHard()
            try await Task.sleep(for: .milliseconds(500))
            agent = try Self.agent(directory)
            #expect(agent.waitUntilReplicating(), "\(agent.log.suffix(3000))")

            // A burst with wal_autocheckpoint=1.
            try app.execute("PRAGMA wal_autocheckpoint=1")
            for _ in 0..<50 { try LedgerDatabase.commitNext(on: app) }
            app.close()
            try await Task.sleep(for: .seconds(1))

            let commits = try writer.stop()
            let checkpoints = checkpointer.stop()
            let status = agent.stop()  // SIGTERM ships everything committed before the agent exits.
            #expect(status == 0, "\(agent.log.suffix(3000))")
            #expect(commits > 150)
            #expect(checkpoints.errors.isEmpty, "\(checkpoints.errors)")
            #expect(checkpoints.ok > 0)

            // Every txid once, in order; every generation's chain intact.
            let replica = Replica(
                store: try FileObjectStore(root: directory.file("replica")), layout: ReplicaLayout(prefix: ""))
            let audit = try await ReplicaAudit.run(replica: replica)
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            #expect(audit.generations.allSatisfy { $0.snapshots > 0 })
            print(
                "churn: \(commits) writer commits, checkpoints \(checkpoints.ok) ok \(checkpoints.busy) busy, generations \(audit.generations.map { "\($0.reason.description): \($0.transactions.count)" })"
            )

            // The latest restore is the application's final state.
            let latest = try Self.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            let expected = try LedgerDatabase.verifiedTransactionCount(at: database)
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == expected)

            // Restores at txids of the last generation are consistent and advance one commit per txid,
            // except across a transaction read from the database at a start (the commits made while
            // the agent was down, as one restore point).
            let last = try #require(audit.generations.last)
            let txids = last.transactions.map(\.txid)
            let fromFile = last.transactions.filter(\.isFromDatabaseFile).map(\.txid)
            var previousCount: Int64?
            var previousTxid: UInt64?
            for txid in stride(from: txids.count / 2, to: txids.count, by: max(1, txids.count / 12)).map({ txids[$0] })
            {
                let output = try Self.restore(directory, ["--txid", String(txid)], to: "at-\(txid).db")
                #expect(output.status == 0, "\(output.stderr)")
                let count = try LedgerDatabase.verifiedTransactionCount(at: directory.file("at-\(txid).db"))
                if let previousCount, let previousTxid {
                    if !fromFile.contains(where: { $0 > previousTxid && $0 <= txid }) {
                        #expect(count - previousCount <= Int64(txid - previousTxid))
                    }
                    #expect(count >= previousCount)
                }
                previousCount = count
                previousTxid = txid
            }
        }

        @Test("a clean stop and start continues the same generation, and --once ships what is pending")
        func cleanRestartContinues() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            var (_, app, agent) = try Self.replicatedLedger(directory, rows: 50)
            defer { app.close() }
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: app) }
            try await agent.waitUntilShipped(commitsAfterSnapshot: 20, replicaDirectory: directory.file("replica"))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: app) }
            agent = try Self.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            #expect(agent.log.contains("continuing generation"), "\(agent.log.suffix(2000))")
            let replica = Replica(
                store: try FileObjectStore(root: directory.file("replica")), layout: ReplicaLayout(prefix: ""))
            let audit = try await ReplicaAudit.run(replica: replica)
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            #expect(audit.generations.count == 1)
            #expect(audit.transactions.count == 40)
            #expect(audit.transactions.suffix(20).allSatisfy { $0.isLate })
            let latest = try Self.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 90)
        }

        @Test("a second agent for the same database exits 3; a database not in WAL mode exits 3")
        func refusals() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 5)
            let agent = try Self.agent(directory)
            #expect(agent.waitForLog("snapshot taken"))
            let second = try WalshipBinary.run([
                "replicate", directory.file("app.db"), Self.replicaURL(directory), "--state-dir",
                directory.file("state"),
            ])
            #expect(second.status == 3, "\(second.stderr)")
            #expect(second.stderr.contains("another walship agent"))
            #expect(agent.stop() == 0)

            try LedgerDatabase.create(at: directory.file("rollback.db"), rows: 5, journalMode: "delete")
            let notWAL = try WalshipBinary.run([
                "replicate", directory.file("rollback.db"), "file://\(directory.file("r2"))", "--state-dir",
                directory.file("state2"), "--once",
            ])
            #expect(notWAL.status == 3, "\(notWAL.stderr)")
            #expect(notWAL.stderr.contains("not WAL"))
            let unsupported = try WalshipBinary.run([
                "replicate", directory.file("app.db"), Self.replicaURL(directory), "--encryption-key-file", "/k",
            ])
            #expect(unsupported.status == 2, "\(unsupported.stderr)")
        }

        @Test(
            "a file replica's directory missing after replicating there (an unmounted volume) exits 4 and is not recreated (found by review)"
        )
        func missingReplicaDirectory() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 5)
            let first = try Self.agent(directory, extra: ["--once"])
            #expect(first.wait() == 0, "\(first.log)")
            try FileManager.default.moveItem(atPath: directory.file("replica"), toPath: directory.file("elsewhere"))
            let again = try WalshipBinary.run([
                "replicate", directory.file("app.db"), Self.replicaURL(directory), "--state-dir",
                directory.file("state"), "--once",
            ])
            #expect(again.status == 4, "\(again.stderr)")
            #expect(again.stderr.contains("is its volume mounted"), "\(again.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("replica")))
            // A first start creates the directory.
            let fresh = try WalshipBinary.run([
                "replicate", directory.file("app.db"), "file://\(directory.file("new/replica"))", "--state-dir",
                directory.file("state-new"), "--once",
            ])
            #expect(fresh.status == 0, "\(fresh.stderr)")
            #expect(FileManager.default.fileExists(atPath: directory.file("new/replica")))

            // With a configuration of several databases, the one whose replica is missing fails
            // and the others stop gracefully: the run ends (it used to spin forever, cancelled
            // replicators retrying at full speed) with exit 4.
            try LedgerDatabase.create(at: directory.file("two.db"), rows: 5)
            try """
            state-dir: \(directory.file("cfg-state"))
            buckets:
              a:
                url: file://\(directory.file("bucket-a"))
              b:
                url: file://\(directory.file("bucket-b"))
            databases:
              - path: \(directory.file("app.db"))
                buckets: [a, b]
              - path: \(directory.file("two.db"))
                bucket: b
            """.write(toFile: directory.file("w.yml"), atomically: true, encoding: .utf8)
            let configured = try AgentProcess(
                ["replicate", "--config", directory.file("w.yml"), "--once"], logPath: directory.file("cfg1.log"))
            #expect(configured.wait(timeout: 60) == 0, "\(configured.log)")
            try FileManager.default.removeItem(atPath: directory.file("bucket-a"))
            // A new database on the same bucket would create its directory on its first start:
            // nothing may run before the missing directory is noticed (found by review).
            try LedgerDatabase.create(at: directory.file("three.db"), rows: 5)
            let text = try String(contentsOfFile: directory.file("w.yml"), encoding: .utf8)
            try (text + "\n  - path: \(directory.file("three.db"))\n    bucket: a\n").write(
                toFile: directory.file("w.yml"), atomically: true, encoding: .utf8)
            let failing = try AgentProcess(
                ["replicate", "--config", directory.file("w.yml"), "--once"], logPath: directory.file("cfg2.log"))
            #expect(failing.wait(timeout: 60) == 4, "\(failing.log)")
            #expect(failing.log.contains("is its volume mounted"), "\(failing.log)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("bucket-a")))
        }

        @Test(
            "--http-addr serves Prometheus metrics that follow the replication: txids, uploads, the generation and the RESTART's write-lock time"
        )
        func metricsEndpoint() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 5)
            let app = try Connection(path: directory.file("app.db"))
            defer { app.close() }
            let agent = try Self.agent(directory, extra: ["--http-addr", "127.0.0.1:0", "--wal-max-frames", "20"])
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let port = try #require(
                agent.httpPort, "\(agent.log)")
            // The snapshot is txid 0; the 100 commits are txids 1...100.
            for _ in 0..<100 { try LedgerDatabase.commitNext(on: app) }
            let target = 100
            let labels = "db=\"\(directory.file("app.db"))\",replica=\"\(Self.replicaURL(directory))\""
            var samples: [String: Double] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let response = try LoopbackHTTP.request(port: port, path: "/metrics")
                #expect(response.status == 200)
                #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
                samples = try LoopbackHTTP.samples(response.body)
                if samples["walship_shipped_txid{\(labels)}"] == Double(target),
                    (samples["walship_checkpoint_restarts_total{\(labels)}"] ?? 0) >= 1
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(samples["walship_observed_txid{\(labels)}"] == Double(target), "\(samples)")
            #expect(samples["walship_shipped_txid{\(labels)}"] == Double(target), "\(samples)")
            #expect(samples["walship_transactions_total{\(labels)}"] == Double(target))
            #expect(samples["walship_generations_started_total{\(labels),reason=\"first_start\"}"] == 1)
            #expect(samples["walship_generations_started_total{\(labels),reason=\"continuity_lost\"}"] == 0)
            #expect(samples["walship_snapshots_uploaded_total{\(labels)}"] == 1)
            #expect((samples["walship_segments_uploaded_total{\(labels)}"] ?? 0) >= 1)
            #expect(samples["walship_spool_objects{\(labels)}"] == 0)
            #expect(samples["walship_replication_lag_seconds{\(labels)}"] == 0, "\(samples)")
            #expect((samples["walship_checkpoint_restarts_total{\(labels)}"] ?? 0) >= 1, "\(samples)")
            #expect((samples["walship_checkpoint_write_lock_seconds_total{\(labels)}"] ?? 0) > 0)
            let observed = samples["walship_observed_commit_timestamp_seconds{\(labels)}"] ?? 0
            #expect(abs(observed - Date().timeIntervalSince1970) < 60)
            #expect(samples.keys.contains { $0.hasPrefix("walship_build_info{version=") })
            // Prometheus' own parser reads every family (prometheus_client, installed by scripts/setup).
            let body = try LoopbackHTTP.request(port: port, path: "/metrics").body
            try body.write(toFile: directory.file("metrics.txt"), atomically: true, encoding: .utf8)
            let parsed = try CommandRunner.run(
                CommandRunner.which("python3") ?? "/usr/bin/python3",
                [
                    "-c",
                    "import sys; from prometheus_client.parser import text_string_to_metric_families as f; print(len([m for m in f(open(sys.argv[1]).read())]))",
                    directory.file("metrics.txt"),
                ])
            #expect(parsed.status == 0, "\(parsed.stderr)")
            #expect((Int(parsed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 20, "\(parsed.stdout)")
            #expect(try LoopbackHTTP.request(port: port, path: "/healthz").body == "ok\n")
            #expect(try LoopbackHTTP.request(port: port, path: "/readyz").body == "ready\n")
            #expect(try LoopbackHTTP.request(port: port, path: "/").status == 200)
            #expect(try LoopbackHTTP.request(port: port, path: "/nothing").status == 404)
            #expect(try LoopbackHTTP.request("POST", port: port, path: "/metrics").status == 405)
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")

            // An address that cannot be listened on is a configuration error (exit 2).
            let blocker = try AgentProcess(
                [
                    "replicate", directory.file("app.db"), Self.replicaURL(directory), "--state-dir",
                    directory.file("state"), "--http-addr", "127.0.0.1:0",
                ], logPath: directory.file("agent2.log"))
            #expect(blocker.waitForLog("serving metrics"))
            let busyPort = try #require(blocker.httpPort)
            for address in ["127.0.0.1:\(busyPort)", "localhost", "127.0.0.1:99999"] {
                let refused = try WalshipBinary.run([
                    "replicate", directory.file("other.db"), "file://\(directory.file("r2"))", "--state-dir",
                    directory.file("state2"), "--http-addr", address,
                ])
                #expect(refused.status == 2, "\(address): \(refused.stderr)")
                #expect(refused.stderr.contains("http-addr"), "\(refused.stderr)")
            }
            // A second agent for the same database with the same address is "another agent"
            // (exit 3), whatever the address (found by review: it exited 2 for the port).
            let twin = try WalshipBinary.run([
                "replicate", directory.file("app.db"), Self.replicaURL(directory), "--state-dir",
                directory.file("state"), "--http-addr", "127.0.0.1:\(busyPort)",
            ])
            #expect(twin.status == 3, "\(twin.stderr)")
            #expect(twin.stderr.contains("another walship agent"), "\(twin.stderr)")
            #expect(blocker.stop() == 0)
        }
    }
}
