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
            _ directory: TemporaryDirectory, rows: Int
        ) throws -> (database: String, app: Connection, agent: AgentProcess) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: rows)
            let app = try Connection(path: database)
            let agent = try Self.agent(directory)
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
            try await Task.sleep(for: .seconds(1))

            // A burst with wal_autocheckpoint=1.
            try app.execute("PRAGMA wal_autocheckpoint=1")
            for _ in 0..<50 { try LedgerDatabase.commitNext(on: app) }
            app.close()
            try await Task.sleep(for: .seconds(1))

            let commits = try writer.stop()
            let checkpoints = checkpointer.stop()
            try await Task.sleep(for: .milliseconds(800))
            let status = agent.stop()
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

            // Restores at txids of the last generation are consistent and advance one commit per txid.
            let last = try #require(audit.generations.last)
            let txids = last.transactions.map(\.txid)
            var previousCount: Int64?
            var previousTxid: UInt64?
            for txid in stride(from: txids.count / 2, to: txids.count, by: max(1, txids.count / 12)).map({ txids[$0] })
            {
                let output = try Self.restore(directory, ["--txid", String(txid)], to: "at-\(txid).db")
                #expect(output.status == 0, "\(output.stderr)")
                let count = try LedgerDatabase.verifiedTransactionCount(at: directory.file("at-\(txid).db"))
                if let previousCount, let previousTxid {
                    #expect(count - previousCount <= Int64(txid - previousTxid))
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
            try await Task.sleep(for: .milliseconds(500))
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
                agent.log.firstMatch(of: /http.port=(\d+)/).flatMap { UInt16($0.1) }, "\(agent.log)")
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
            #expect(try LoopbackHTTP.request(port: port, path: "/").status == 404)
            #expect(try LoopbackHTTP.request("POST", port: port, path: "/metrics").status == 405)
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")

            // An address that cannot be listened on is a configuration error (exit 2).
            let blocker = try AgentProcess(
                [
                    "replicate", directory.file("app.db"), Self.replicaURL(directory), "--state-dir",
                    directory.file("state"), "--http-addr", "127.0.0.1:0",
                ], logPath: directory.file("agent2.log"))
            #expect(blocker.waitForLog("serving metrics"))
            let busyPort = try #require(blocker.log.firstMatch(of: /http.port=(\d+)/).flatMap { UInt16($0.1) })
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

extension CLIIntegration {
    @Suite("walship replicate keeps the WAL bounded")
    struct WALBoundTests {
        static let writerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/ledger_writer.py").path

        @Test("under 60 s of sustained writes from another process the WAL stays under 8 MB, and nothing is lost")
        func walStaysBounded() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 100)
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("snapshot taken"))
            let writer = try WriterProcess(
                script: Self.writerScript, database: database, intervalMilliseconds: 1, payloadBytes: 3000, seconds: 60)
            var largest: Int64 = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                largest = max(largest, FileSystem.size(database + "-wal") ?? 0)
                try await Task.sleep(for: .milliseconds(100))
            }
            let commits = try writer.wait()
            try await Task.sleep(for: .milliseconds(800))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            print("wal bound: \(commits) commits in 60 s, largest WAL \(largest) bytes")
            #expect(commits > 6000)
            #expect(largest < 8_000_000)
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == Int64(100 + commits))
        }

        @Test(
            "one database replicated to two buckets: both restore every commit, app TRUNCATE checkpoints succeed, the WAL stays bounded"
        )
        func twoBucketsUnderSustainedWrites() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 100)
            let config = """
                state-dir: \(directory.file("state"))
                buckets:
                  near:
                    url: file://\(directory.file("near"))
                    sync-interval: 200ms
                  far:
                    url: file://\(directory.file("far"))
                databases:
                  - path: \(database)
                    buckets: [near, far]
                """
            try config.write(toFile: directory.file("walship.yml"), atomically: true, encoding: .utf8)
            let agent = try AgentProcess(
                ["replicate", "--config", directory.file("walship.yml"), "--log-level", "debug"],
                logPath: directory.file("agent.log"))
            #expect(agent.waitForLog("snapshot taken"))
            let writer = try WriterProcess(
                script: Self.writerScript, database: database, intervalMilliseconds: 1, payloadBytes: 3000, seconds: 20)
            // An app connection checkpoints with TRUNCATE and a 1 s busy timeout now and then.
            let app = try Connection(path: database)
            try app.setBusyTimeout(milliseconds: 1000)
            var largest: Int64 = 0
            var truncates = 0
            var busy = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                for _ in 0..<10 {
                    largest = max(largest, FileSystem.size(database + "-wal") ?? 0)
                    try await Task.sleep(for: .milliseconds(100))
                }
                do {
                    _ = try app.checkpoint(.truncate)
                    truncates += 1
                } catch let error as SQLiteError where error.isBusy {
                    busy += 1
                }
            }
            app.close()
            let commits = try writer.wait()
            try await Task.sleep(for: .milliseconds(800))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let restarts = agent.log.components(separatedBy: "restart checkpoint lock_ms").count - 1
            let restartsBusy = agent.log.components(separatedBy: "restart checkpoint busy").count - 1
            print(
                "two buckets: \(commits) commits, largest WAL \(largest) bytes, app TRUNCATE \(truncates) ok \(busy) busy, agent RESTART \(restarts) ok \(restartsBusy) busy"
            )
            #expect(commits > 2000)
            #expect(largest < 8_000_000)
            // Busy only when overlapping an agent RESTART (which holds the writer lock for a few ms).
            #expect(truncates >= 10, "\(truncates) TRUNCATE checkpoints succeeded, \(busy) busy")
            for bucket in ["near", "far"] {
                let output = try WalshipBinary.run(
                    [
                        "restore", database, "--config", directory.file("walship.yml"), "--bucket", bucket, "-o",
                        directory.file("\(bucket).db"), "--quiet",
                    ])
                #expect(output.status == 0, "\(output.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(bucket).db"))
                        == Int64(100 + commits))
                let audit = try await ReplicaAudit.run(
                    replica: Replica(
                        store: try FileObjectStore(root: directory.file(bucket)), layout: ReplicaLayout(prefix: "app/"))
                )
                #expect(audit.problems.isEmpty, "\(bucket): \(audit.problems)")
                #expect(audit.generations.count == 1, "\(bucket): \(audit.generations.map(\.reason))")
            }
        }
    }
}

extension CLIIntegration {
    @Suite("walship replicate to S3")
    struct ReplicateToS3Tests {
        @Test(
            "--config replicates two databases to a loopback S3 server and a directory; restore and list find them by name"
        )
        func configWithTwoDatabases() async throws {
            let server = try await S3TestServer.start(buckets: ["backups"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 30)
            try LedgerDatabase.create(at: directory.file("jobs.db"), rows: 10)
            let config = """
                state-dir: \(directory.file("state"))
                buckets:
                  s3:
                    url: s3://backups/prod
                    endpoint: ${TEST_S3_ENDPOINT}
                    access-key-id: ${TEST_S3_KEY}
                    secret-access-key: ${TEST_S3_SECRET}
                  dir:
                    url: file://\(directory.file("replica"))
                databases:
                  - path: \(directory.file("app.db"))
                    buckets: [s3]
                  - path: \(directory.file("jobs.db"))
                    buckets: [dir]
                    prefix: batch
                """
            try config.write(toFile: directory.file("walship.yml"), atomically: true, encoding: .utf8)
            let environment = [
                "TEST_S3_ENDPOINT": server.endpoint, "TEST_S3_KEY": server.accessKeyID,
                "TEST_S3_SECRET": server.secretAccessKey,
            ]
            let once = try WalshipBinary.run(
                ["replicate", "--config", directory.file("walship.yml"), "--once"], environment: environment)
            #expect(once.status == 0, "\(once.stderr)")
            // Objects landed under bucket prefix + database prefix.
            #expect(FileManager.default.fileExists(atPath: server.dataRoot + "/backups/prod/app/generations"))
            #expect(FileManager.default.fileExists(atPath: directory.file("replica/batch/generations")))

            for (name, rows) in [("app", Int64(30)), (directory.file("jobs.db"), 10)] {
                let output = try WalshipBinary.run(
                    [
                        "restore", name, "--config", directory.file("walship.yml"), "-o", directory.file("\(rows).db"),
                        "--quiet",
                    ],
                    environment: environment)
                #expect(output.status == 0, "\(output.stderr)")
                #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(rows).db")) == rows)
            }
            let list = try WalshipBinary.run(
                ["list", "app", "--config", directory.file("walship.yml"), "--json"], environment: environment)
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("\"restore_window\""))
        }

        @Test("replication to S3 under a writer, stopped and restarted, restores the app's final state")
        func replicateToS3() async throws {
            let server = try await S3TestServer.start(buckets: ["walship"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 100)
            let environment = [
                "AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": server.accessKeyID,
                "AWS_SECRET_ACCESS_KEY": server.secretAccessKey,
            ]
            let arguments = [
                "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"), "--sync-interval",
                "200ms",
            ]
            var agent = try AgentProcess(arguments, logPath: directory.file("agent.log"), environment: environment)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let writer = try WriterProcess(
                script: WALBoundTests.writerScript, database: database, intervalMilliseconds: 10, payloadBytes: 1000)
            try await Task.sleep(for: .seconds(2))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            try await Task.sleep(for: .milliseconds(300))
            agent = try AgentProcess(arguments, logPath: directory.file("agent.log"), environment: environment)
            try await Task.sleep(for: .seconds(2))
            let commits = try writer.stop()
            try await Task.sleep(for: .milliseconds(600))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let output = try WalshipBinary.run(
                ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"], environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == Int64(100 + commits))
        }
    }
}

extension CLIIntegration {
    @Suite("walship replicate and a writer killed in COMMIT")
    struct UnpublishedCommitTests {
        static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/unpublished_commit.py").path

        /// Runs `unpublished_commit.py` under strace with its WAL sync held, and kills it once its
        /// frames (a ledger transaction with a `payloadBytes` payload) are in the `-wal` file: a
        /// commit written but never published in the wal-index.
        static func killInCommit(_ database: String, payloadBytes: Int) throws {
            let strace = try #require(CommandRunner.which("strace"), "strace is missing: run scripts/setup")
            let python = try #require(
                try CommandRunner.run("/bin/sh", ["-c", "python3 -c 'import sys; print(sys.executable)'"]).stdout
                    .split(separator: "\n").first.map(String.init))
            let victim = Process()
            victim.executableURL = URL(fileURLWithPath: strace)
            victim.arguments = [
                "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e",
                "inject=fsync,fdatasync:delay_enter=30s", python, script, database, String(payloadBytes),
            ]
            let pipe = Pipe()
            victim.standardOutput = pipe
            try victim.run()
            var line = Data()
            while !line.contains(0x0A) {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            #expect(String(decoding: line, as: UTF8.self).hasPrefix("written"))
            _ = try CommandRunner.run("/usr/bin/pkill", ["-9", "-f", script])
            victim.waitUntilExit()
        }

        /// A ledger database of 20 rows replicated by a running agent, after a writer's commits of
        /// 0.2 s were shipped (the WAL holds frames).
        static func agentAfterCommits(_ directory: TemporaryDirectory) throws -> (String, AgentProcess) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 20)
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            _ = try WriterProcess(script: WALBoundTests.writerScript, database: database, seconds: 0.2).wait()
            #expect(agent.waitForLog("object uploaded", after: "snapshot taken"), "\(agent.log)")
            return (database, agent)
        }

        /// Rows with the victim's payload size in `path`.
        static func victimRows(_ path: String, payloadBytes: Int) throws -> Int64? {
            let connection = try Connection(path: path, mode: [.readOnly])
            defer { connection.close() }
            return try connection.scalarInt("SELECT count(*) FROM ledger WHERE length(payload) = \(payloadBytes)")
        }

        @Test(
            "a commit SQLite's recovery publishes after the agent stopped (a writer killed in COMMIT, then the agent stopped) ships at the next start in the same generation, with the WAL kept or removed",
            arguments: [true, false])
        func recoveredCommitShipsAtNextStart(walKept: Bool) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, agent) = try Self.agentAfterCommits(directory)
            // The demo's order: the writer dies inside COMMIT, then the agent stops. The agent
            // never saw the commit: it was not published while it ran.
            try Self.killInCommit(database, payloadBytes: 7777)
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            // The application's next connection is the first one: SQLite's recovery rebuilds the
            // wal-index from the WAL and publishes the killed writer's complete commit.
            let app = try Connection(path: database)
            #expect(try app.scalarInt("SELECT count(*) FROM ledger WHERE length(payload) = 7777") == 1)
            let expected = try LedgerDatabase.verifiedTransactionCount(at: database)
            // Kept: the WAL still holds it (catch-up). Removed: the last connection checkpointed
            // and deleted the WAL (continuity by content).
            if !walKept { app.close() }
            defer { if walKept { app.close() } }
            let next = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(next.wait() == 0, "\(next.log.suffix(2000))")
            #expect(!next.log.contains("new generation"), "\(next.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == expected)
            #expect(try Self.victimRows(directory.file("latest.db"), payloadBytes: 7777) == 1)
        }

        @Test("a commit frame written but never published is not shipped, and later commits are not lost")
        func unpublishedCommitIsNotShipped() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // A few published commits so the WAL has frames and the victim's first sync is its commit's.
            let (database, agent) = try Self.agentAfterCommits(directory)

            // The victim writes its frames, then hangs in the WAL sync; it is killed there.
            try Self.killInCommit(database, payloadBytes: 9000)
            try await Task.sleep(for: .seconds(1))
            #expect(!agent.log.contains("panic"))

            // Later commits overwrite the unpublished frames under the same salts.
            let after = try WriterProcess(script: WALBoundTests.writerScript, database: database, seconds: 0.5).wait()
            try await Task.sleep(for: .milliseconds(800))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")

            let replica = Replica(
                store: try FileObjectStore(root: directory.file("replica")), layout: ReplicaLayout(prefix: ""))
            let audit = try await ReplicaAudit.run(replica: replica)
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            let expected = try LedgerDatabase.verifiedTransactionCount(at: database)
            // Every restorable state is a real one: the ledger invariant holds at each txid, and the
            // counter never repeats (a shipped phantom would repeat the next writer's counter).
            var counts: [Int64] = []
            for transaction in audit.transactions.suffix(after + 2) {
                let name = "at-\(transaction.txid).db"
                let output = try ReplicateCommandTests.restore(
                    directory, ["--txid", String(transaction.txid)], to: name)
                #expect(output.status == 0, "\(output.stderr)")
                counts.append(try LedgerDatabase.verifiedTransactionCount(at: directory.file(name)))
            }
            #expect(counts == counts.sorted() && Set(counts).count == counts.count, "\(counts)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0)
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == expected)
            // No restored state holds the victim's 9000-byte payload.
            #expect(try Self.victimRows(directory.file("latest.db"), payloadBytes: 9000) == 0)
        }
    }
}

extension CLIIntegration {
    @Suite("walship replicate after downtime")
    struct DowntimeTests {
        @Test("commits made and RESTART-checkpointed while the agent was down are shipped at the next start")
        func restartCheckpointDuringDowntimeStartsNewGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            try app.setBusyTimeout(milliseconds: 2000)
            var agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("snapshot taken"))
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            try await Task.sleep(for: .milliseconds(500))
            #expect(agent.stop() == 0)
            // While the agent is down: more commits, then a RESTART checkpoint. The WAL keeps its
            // header and frames until the next writer restarts it, so the catch-up read ships them.
            for _ in 0..<7 { try LedgerDatabase.commitNext(on: app) }
            _ = try app.checkpoint(.restart)
            agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 22)
        }

        /// Removes the agent's page hashes from its state directory, as a state directory of
        /// walship 0.1 has none: continuity can then be proven only by the WAL.
        static func forgetPageHashes(_ directory: TemporaryDirectory) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: directory.file("state")) {
                try? FileManager.default.removeItem(atPath: directory.file("state/\(name)/pages"))
            }
        }

        /// Replicates `watched` commits on top of 10 rows, stops the agent, makes `unwatched`
        /// commits and a TRUNCATE checkpoint, then runs `--once`; returns that run's log. With
        /// `forgetPageHashes`, the state directory loses its page hashes meanwhile.
        static func truncateDuringDowntime(
            _ directory: TemporaryDirectory, watched: Int, unwatched: Int, forgetPageHashes: Bool = false
        ) async throws
            -> String
        {
            var (_, app, agent) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            for _ in 0..<watched { try LedgerDatabase.commitNext(on: app) }
            try await Task.sleep(for: .milliseconds(600))
            #expect(agent.stop() == 0)
            for _ in 0..<unwatched { try LedgerDatabase.commitNext(on: app) }
            _ = try app.checkpoint(.truncate)
            if forgetPageHashes { try Self.forgetPageHashes(directory) }
            agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            return agent.log
        }

        @Test(
            "a new generation's first restore point never reuses a txid of its predecessor (found by walship-torture)")
        func newGenerationNeverReusesATxid() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // Commits nobody watches, then a reset WAL, and no page hashes to prove continuity by
            // content: the next generation's snapshot holds them.
            _ = try await Self.truncateDuringDowntime(directory, watched: 4, unwatched: 3, forgetPageHashes: true)
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let generations = try #require(object?["generations"] as? [[String: Any]])
            try #require(generations.count == 2, "\(list.stdout)")
            let firstLast = try #require(generations[0]["last_txid"] as? Int)
            let secondFirst = try #require(generations[1]["first_txid"] as? Int)
            #expect(secondFirst > firstLast, "\(list.stdout)")
            // Each txid restores one state: the predecessor's last is 14 commits, the new one's first 17.
            for (txid, expected) in [(firstLast, 14), (secondFirst, 17)] {
                let restored = try ReplicateCommandTests.restore(directory, ["--txid", String(txid)], to: "\(txid).db")
                #expect(restored.status == 0, "\(restored.stderr)")
                #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(txid).db")) == expected)
            }
            let audit = try await ReplicaAudit.run(
                replica: Replica(
                    store: try FileObjectStore(root: directory.file("replica")), layout: ReplicaLayout(prefix: "")))
            #expect(audit.problems.isEmpty, "\(audit.problems)")
        }

        @Test("a page size changed while the agent was down starts a new generation that says so, and restores exactly")
        func pageSizeChangeDuringDowntime() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 30)
            #expect(try ReplicateCommandTests.agent(directory, extra: ["--once"]).wait() == 0)
            do {
                let app = try Connection(path: database)
                defer { app.close() }
                _ = try app.scalarText("PRAGMA journal_mode=DELETE")
                try app.execute("PRAGMA page_size=8192; VACUUM")
                _ = try app.scalarText("PRAGMA journal_mode=WAL")
                for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            }
            let agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            #expect(agent.log.contains("page size changed"), "\(agent.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 33)
            let check = try Connection(path: directory.file("latest.db"), mode: [.readOnly])
            #expect(try check.pageSize() == 8192)
            check.close()
        }

        @Test(
            "a TRUNCATE checkpoint while the agent was down continues the generation by content: the unwatched commits ship as one transaction read from the database file"
        )
        func truncateDuringDowntimeContinuesByContent() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let log = try await Self.truncateDuringDowntime(directory, watched: 5, unwatched: 7)
            #expect(!log.contains("new generation"), "\(log.suffix(2000))")
            #expect(log.contains("shipped as one transaction read from the database file"), "\(log.suffix(2000))")
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            #expect(list.stdout.components(separatedBy: "\"id\"").count == 2, "one generation: \(list.stdout)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(
                latest.stderr.contains("restore.checksum=") && !latest.stderr.contains("without the database checksum"))
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 22)
        }

        @Test(
            "a TRUNCATE checkpoint while the agent was down, with no page hashes to check by content, starts a new generation whose snapshot holds everything"
        )
        func truncateDuringDowntimeStartsNewGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let log = try await Self.truncateDuringDowntime(directory, watched: 5, unwatched: 7, forgetPageHashes: true)
            #expect(log.contains("new generation"), "\(log.suffix(2000))")
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            #expect(list.stdout.components(separatedBy: "\"id\"").count == 3, "two generations: \(list.stdout)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 22)
        }
    }
}

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
                try await Task.sleep(for: .milliseconds(350))
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

extension CLIIntegration {
    @Suite("walship snapshot")
    struct SnapshotCommandTests {
        static func snapshotCount(_ directory: TemporaryDirectory) throws -> Int {
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let generations = (object?["generations"] as? [[String: Any]]) ?? []
            return generations.reduce(0) { $0 + (($1["snapshots"] as? [Any])?.count ?? 0) }
        }

        @Test(
            "walship snapshot asks the running agent and returns once the snapshot is uploaded; with no agent it replicates once"
        )
        func snapshotNow() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, agent) = try ReplicateCommandTests.replicatedLedger(directory, rows: 50)
            defer { app.close() }
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            let state = ["--state-dir", directory.file("state")]
            let asked = try WalshipBinary.run(["snapshot", database] + state)
            #expect(asked.status == 0, "\(asked.stderr)")
            #expect(asked.stdout.contains("by the running agent"), "\(asked.stdout)")
            // Uploaded before the command returned: the replica lists it, holding all 55 commits.
            #expect(try Self.snapshotCount(directory) == 2)
            #expect(agent.stop() == 0)

            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            let withoutURL = try WalshipBinary.run(["snapshot", database] + state)
            #expect(withoutURL.status == 2, "\(withoutURL.stderr)")
            #expect(withoutURL.stderr.contains("no agent is running"), "\(withoutURL.stderr)")
            let once = try WalshipBinary.run(
                ["snapshot", database, ReplicateCommandTests.replicaURL(directory)] + state)
            #expect(once.status == 0, "\(once.stderr)")
            #expect(try Self.snapshotCount(directory) == 3)
            // The newest snapshot alone restores the final state (the segments are removed to prove it).
            for path in try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica"))
            where path.hasSuffix(".segment") {
                try FileManager.default.removeItem(atPath: directory.file("replica/\(path)"))
            }
            let restored = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 58)
        }

        @Test("walship snapshot --config snapshots every bucket of a database, or the one --bucket names")
        func snapshotEveryBucket() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 12)
            let config = """
                state-dir: \(directory.file("state"))
                buckets:
                  one:
                    url: file://\(directory.file("one"))
                  two:
                    url: file://\(directory.file("two"))
                databases:
                  - path: \(directory.file("app.db"))
                    buckets: [one, two]
                """
            try config.write(toFile: directory.file("walship.yml"), atomically: true, encoding: .utf8)
            func snapshots(_ bucket: String) throws -> Int {
                let list = try WalshipBinary.run(["list", "file://\(directory.file(bucket))/app", "--json"])
                let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
                let generations = (object?["generations"] as? [[String: Any]]) ?? []
                return generations.reduce(0) { $0 + (($1["snapshots"] as? [Any])?.count ?? 0) }
            }
            let both = try WalshipBinary.run(["snapshot", "app", "--config", directory.file("walship.yml")])
            #expect(both.status == 0, "\(both.stderr)")
            #expect(try snapshots("one") == 1 && snapshots("two") == 1)
            let one = try WalshipBinary.run(
                ["snapshot", "app", "--config", directory.file("walship.yml"), "--bucket", "two"])
            #expect(one.status == 0, "\(one.stderr)")
            #expect(try snapshots("one") == 1 && snapshots("two") == 2)
            let restored = try WalshipBinary.run(
                [
                    "restore", "app", "--config", directory.file("walship.yml"), "--bucket", "two", "-o",
                    directory.file("two.db"), "--quiet",
                ])
            #expect(restored.status == 0, "\(restored.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("two.db")) == 12)
        }
    }
}

extension CLIIntegration {
    @Suite("walship replicate to several buckets")
    struct SeveralBucketsTests {
        static func writeConfig(_ directory: TemporaryDirectory, buckets: [String]) throws {
            var text = "state-dir: \(directory.file("state"))\nbuckets:\n"
            for name in ["a", "b"] { text += "  \(name):\n    url: file://\(directory.file(name))\n" }
            text +=
                "databases:\n  - path: \(directory.file("app.db"))\n    buckets: [\(buckets.joined(separator: ", "))]\n"
            try text.write(toFile: directory.file("walship.yml"), atomically: true, encoding: .utf8)
        }

        static func audit(_ directory: TemporaryDirectory, _ bucket: String) async throws -> ReplicaAudit {
            try await ReplicaAudit.run(
                replica: Replica(
                    store: try FileObjectStore(root: directory.file(bucket)), layout: ReplicaLayout(prefix: "app/")))
        }

        @Test("one agent per database whatever its buckets: a second agent for one of them exits 3")
        func secondAgentForOneBucketExitsThree() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 5)
            try Self.writeConfig(directory, buckets: ["a", "b"])
            let agent = try AgentProcess(
                ["replicate", "--config", directory.file("walship.yml")], logPath: directory.file("agent.log"))
            #expect(agent.waitForLog("snapshot taken"))
            try Self.writeConfig(directory, buckets: ["a"])
            let second = try WalshipBinary.run(["replicate", "--config", directory.file("walship.yml"), "--once"])
            #expect(second.status == 3, "\(second.stderr)")
            let direct = try WalshipBinary.run(
                [
                    "replicate", directory.file("app.db"), "file://\(directory.file("a"))/app", "--state-dir",
                    directory.file("state"), "--once",
                ])
            #expect(direct.status == 3, "\(direct.stderr)")
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
        }

        @Test(
            "adding and removing a bucket moves the replica's state and spool: objects waiting from an outage go up in the same generation"
        )
        func bucketListChangeKeepsTheSpool() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 5)
            // Bucket a is a symlink to a directory; pointing it at a file makes the store fail.
            try FileManager.default.createDirectory(atPath: directory.file("a.real"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("a"), withDestinationPath: directory.file("a.real"))
            _ = FileManager.default.createFile(atPath: directory.file("not-a-directory"), contents: Data("x".utf8))
            try Self.writeConfig(directory, buckets: ["a"])
            let app = try Connection(path: database)
            defer { app.close() }
            let agent = try AgentProcess(
                [
                    "replicate", "--config", directory.file("walship.yml"), "--sync-interval", "100ms",
                    "--shutdown-timeout", "1s",
                ],
                logPath: directory.file("agent.log"))
            #expect(agent.waitForLog("snapshot taken"))
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try await Task.sleep(for: .milliseconds(600))
            try FileManager.default.removeItem(atPath: directory.file("a"))
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("a"), withDestinationPath: directory.file("not-a-directory"))
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: app) }
            try await Task.sleep(for: .milliseconds(600))
            #expect(agent.stop() == 4, "objects stay in the spool: \(agent.log.suffix(2000))")
            try FileManager.default.removeItem(atPath: directory.file("a"))
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("a"), withDestinationPath: directory.file("a.real"))

            // A second bucket: a's state and spool move to its own directory and go up.
            try Self.writeConfig(directory, buckets: ["a", "b"])
            let both = try WalshipBinary.run(["replicate", "--config", directory.file("walship.yml"), "--once"])
            #expect(both.status == 0, "\(both.stderr)")
            #expect(both.stderr.contains("moved this replica's local state"), "\(both.stderr)")
            // Back to one bucket: the state moves back and the generation continues.
            for _ in 0..<2 { try LedgerDatabase.commitNext(on: app) }
            try Self.writeConfig(directory, buckets: ["a"])
            let one = try WalshipBinary.run(["replicate", "--config", directory.file("walship.yml"), "--once"])
            #expect(one.status == 0, "\(one.stderr)")
            #expect(one.stderr.contains("continuing generation"), "\(one.stderr)")

            let audit = try await Self.audit(directory, "a")
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            #expect(audit.generations.count == 1, "\(audit.generations.map(\.reason))")
            for bucket in ["a", "b"] {
                let output = try WalshipBinary.run(
                    [
                        "restore", "file://\(directory.file(bucket))/app", "-o", directory.file("\(bucket).db"),
                        "--quiet",
                    ])
                #expect(output.status == 0, "\(output.stderr)")
            }
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("a.db")) == 14)
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("b.db")) == 12)
        }
    }
}
