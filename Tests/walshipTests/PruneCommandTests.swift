import Foundation
import Testing
import WalshipCore
import WalshipTesting

extension CLIIntegration {
    @Suite("walship prune")
    struct PruneCommandTests {
        static func json(_ output: CommandRunner.Output) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        }

        @Test(
            "prune deletes superseded chains only: every txid of the window it reports restores exactly, a time before it exits 6, --dry-run deletes nothing, and no segment is left that no kept snapshot needs"
        )
        func pruneKeepsTheWindow() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            // A snapshot every second while the ledger grows for about 4 s.
            #expect(agent.stop() == 0)
            let url = ReplicateCommandTests.replicaURL(directory)
            let second = try ReplicateCommandTests.agent(directory, extra: ["--snapshot-interval", "1s"])
            // Txid N holds 10 + N rows only while one generation goes on: a commit made before the
            // agent holds its read lock restarts the WAL, and the generation cannot continue.
            #expect(second.waitForLog("continuing generation"), "\(second.log)")
            for _ in 0..<40 {
                try LedgerDatabase.commitNext(on: app)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(second.stop() == 0, "\(second.log.suffix(2000))")
            let store = try FileObjectStore(root: directory.file("replica"))
            let before = try await ReplicaInventory.load(store: store, layout: ReplicaLayout(prefix: ""))
            #expect(before.snapshots.count >= 3, "\(before.snapshots.map(\.key))")

            // list with a retention shows what a prune would delete.
            let listed = try WalshipBinary.run(["list", url, "--json", "--retention", "2s", "--retention-grace", "0s"])
            let retention = try #require(try Self.json(listed)["retention"] as? [String: Any], "\(listed.stdout)")
            #expect((retention["prunable_objects"] as? Int ?? 0) > 0, "\(listed.stdout)")
            let arguments = ["prune", url, "--retention", "2s", "--retention-grace", "0s", "--json"]
            let dry = try WalshipBinary.run(arguments + ["--dry-run"])
            #expect(dry.status == 0, "\(dry.stderr)")
            let planned = try Self.json(dry)
            #expect((planned["objects"] as? Int ?? 0) > 0, "\(dry.stdout)")
            let unchanged = try await ReplicaInventory.load(store: store, layout: ReplicaLayout(prefix: ""))
            #expect(
                unchanged.snapshots.count + unchanged.segments.count == before.snapshots.count + before.segments.count)

            let run = try WalshipBinary.run(arguments)
            #expect(run.status == 0, "\(run.stderr)")
            let done = try Self.json(run)
            #expect(done["keys"] as? [String] == planned["keys"] as? [String])
            #expect((done["failures"] as? [String])?.isEmpty == true, "\(run.stdout)")
            let after = try await ReplicaInventory.load(store: store, layout: ReplicaLayout(prefix: ""))
            #expect(after.snapshots.count < before.snapshots.count)

            // Every restore point of the window restores exactly (the ledger's txid N holds 10 + N rows).
            let window = try #require(done["window_after"] as? [String: Any], "\(run.stdout)")
            let earliest = try #require(window["earliest_txid"] as? Int)
            let latest = try #require(window["latest_txid"] as? Int)
            #expect(latest == (try #require((done["window_before"] as? [String: Any])?["latest_txid"] as? Int)))
            for txid in earliest...latest {
                let restored = try ReplicateCommandTests.restore(
                    directory, ["--txid", String(txid)], to: "t\(txid).db")
                #expect(restored.status == 0, "txid \(txid): \(restored.stderr)")
                let count = try LedgerDatabase.verifiedTransactionCount(at: directory.file("t\(txid).db"))
                #expect(count == Int64(10 + txid), "txid \(txid) holds \(count) transactions")
            }
            let tooEarly = try ReplicateCommandTests.restore(
                directory, ["--txid", String(earliest - 1)], to: "early.db")
            #expect(tooEarly.status == 6, "\(tooEarly.stderr)")
            // No orphans: each segment left reaches past a kept snapshot of its generation.
            for segment in after.segments {
                let kept = after.snapshots(of: segment.generation).map(\.fromTxid).min() ?? UInt64.max
                #expect(segment.lastTxid > kept, "\(segment.key) is needed by no kept snapshot")
            }
            // Pruning again at once deletes nothing more.
            let again = try WalshipBinary.run(arguments)
            #expect(try Self.json(again)["objects"] as? Int == 0, "\(again.stdout)")
        }

        @Test(
            "the agent prunes on its own when a chain becomes deletable: after it stopped, every txid from the earliest kept restore point restores exactly, earlier ones exit 6, and no orphan segment is left"
        )
        func agentPrunesByItself() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            let agent = try ReplicateCommandTests.agent(
                directory, extra: ["--snapshot-interval", "1s", "--retention", "2s", "--retention-grace", "0s"])
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            var pruned = false
            for _ in 0..<150 where !pruned {  // At most 15 s; the first prune is due after about 3 s.
                try LedgerDatabase.commitNext(on: app)
                try await Task.sleep(for: .milliseconds(100))
                pruned = agent.log.contains("pruned")
            }
            #expect(pruned, "\(agent.log.suffix(3000))")
            // Stop before checking, so that a next prune cannot race the checks.
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let store = try FileObjectStore(root: directory.file("replica"))
            let after = try await ReplicaInventory.load(store: store, layout: ReplicaLayout(prefix: ""))
            let span = try #require(RestorePlanner(inventory: after).spans.first)
            try #require(span.firstTxid > 0, "nothing was pruned")
            for txid in span.firstTxid...span.lastTxid {
                let restored = try ReplicateCommandTests.restore(
                    directory, ["--txid", String(txid)], to: "t\(txid).db")
                #expect(restored.status == 0, "txid \(txid): \(restored.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("t\(txid).db")) == Int64(10 + txid))
            }
            let early = try ReplicateCommandTests.restore(
                directory, ["--txid", String(span.firstTxid - 1)], to: "e.db")
            #expect(early.status == 6, "\(early.stderr)")
            try Self.checkWindowTimes(url: ReplicateCommandTests.replicaURL(directory), in: directory)
            for segment in after.segments {
                let kept = after.snapshots(of: segment.generation).map(\.fromTxid).min() ?? UInt64.max
                #expect(segment.lastTxid > kept, "\(segment.key) is needed by no kept snapshot")
            }
        }

        /// The restore window `list --json` reports after a prune: its first and last times restore
        /// exactly its first and last txids, and a time just before it exits 6 naming the window.
        static func checkWindowTimes(
            url: String, in directory: TemporaryDirectory, environment: [String: String] = [:]
        ) throws {
            let listed = try WalshipBinary.run(["list", url, "--json"], environment: environment)
            let window = try #require(try Self.json(listed)["restore_window"] as? [String: Any], "\(listed.stdout)")
            let earliest = try #require(window["earliest_time"] as? String)
            let latest = try #require(window["latest_time"] as? String)
            for (time, txid) in [(earliest, window["earliest_txid"] as? Int), (latest, window["latest_txid"] as? Int)] {
                let txid = try #require(txid)
                let byTime = try WalshipBinary.run(
                    ["restore", url, "-o", directory.file("time-\(txid).db"), "--quiet", "--at", time],
                    environment: environment)
                #expect(byTime.status == 0, "--at \(time): \(byTime.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("time-\(txid).db"))
                        == Int64(10 + txid),
                    "--at \(time) is txid \(txid)")
            }
            let earliestMs = try #require(CivilTime.parseRFC3339(earliest))
            let before = Timestamp.format(milliseconds: UInt64(earliestMs - 1))
            let tooEarly = try WalshipBinary.run(
                ["restore", url, "-o", directory.file("before.db"), "--quiet", "--at", before], environment: environment
            )
            #expect(tooEarly.status == 6, "\(tooEarly.stderr)")
            #expect(
                tooEarly.stderr.contains("outside the restore window") && tooEarly.stderr.contains(earliest),
                "\(tooEarly.stderr)")
        }

        /// Issue 18: the agent's own prunes on a real S3 server whose DeleteObjects refuses every key
        /// (AccessDenied): the agent names the keys, counts the failure, keeps replicating, and a
        /// later prune deletes them once deletes work again.
        @Test(
            "on S3, the agent logs the keys a refused DeleteObjects kept and counts the failure, replicates on, and a later prune deletes them"
        )
        func agentReportsRefusedDeletesOnS3() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let s3 = try await ProxiedS3(directory: directory)
            defer { s3.stop() }
            let (proxy, environment) = (s3.proxy, s3.environment)
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            proxy.setDeletes(.deny)
            let agent = try AgentProcess(
                [
                    "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"),
                    "--sync-interval", "100ms", "--snapshot-interval", "1s", "--retention", "2s",
                    "--retention-grace", "0s", "--http-addr", "127.0.0.1:0",
                ], logPath: directory.file("agent.log"), environment: environment)
            defer { agent.stop() }
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            let port = try #require(agent.httpPort)
            func commitUntil(_ text: String) async throws -> Bool {
                for _ in 0..<200 {  // At most 20 s; a prune is due about 3 s after each snapshot.
                    try LedgerDatabase.commitNext(on: app)
                    try await Task.sleep(for: .milliseconds(100))
                    if agent.log.contains(text) { return true }
                }
                return false
            }
            #expect(try await commitUntil("retention could not delete some objects"), "\(agent.log.suffix(3000))")
            let refused = try #require(
                agent.log.split(separator: "\n").first { $0.contains("retention could not delete some objects") })
            #expect(refused.contains("generations/") && refused.contains("AccessDenied"), "\(refused)")
            let samples = try LoopbackHTTP.samples(try LoopbackHTTP.request(port: port, path: "/metrics").body)
            #expect((samples.first { $0.key.hasPrefix("walship_retention_failures_total{") }?.value ?? 0) >= 1)
            let shipped = samples.first { $0.key.hasPrefix("walship_shipped_txid{") }?.value ?? 0
            #expect(shipped > 0, "replication goes on")
            let key = try #require(
                refused.firstMatch(of: /(db\/generations\/[0-9a-f]+\/[a-z]+\/[0-9a-f-]+\.[a-z]+)/)?.1)
            proxy.setDeletes(.forward)
            #expect(try await commitUntil("pruned"), "\(agent.log.suffix(3000))")
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let listed = try WalshipBinary.run(["list", "s3://walship/db", "--json"], environment: environment)
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(!listed.stdout.contains(String(key)), "\(key) was kept after deletes worked again")
            try Self.checkWindowTimes(url: "s3://walship/db", in: directory, environment: environment)
            let latest = try WalshipBinary.run(
                ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"], environment: environment)
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try ContentHash.of(path: directory.file("latest.db")) == (try ContentHash.of(connection: app)))
        }

        /// Issue 18: deletes that fail on a real S3 server (rclone behind the fault proxy): a
        /// DeleteObjects answered 200 with nothing deleted (as R2 has been seen to do) and one
        /// refused per key are named and exit 4; nothing is lost, and a prune that works then
        /// deletes the same keys.
        @Test(
            "on S3, prune names objects a DeleteObjects left in place or refused (exit 4), then deletes them once deletes work"
        )
        func pruneOnS3ReportsFailedDeletes() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let s3 = try await ProxiedS3(directory: directory)
            defer { s3.stop() }
            let (proxy, environment) = (s3.proxy, s3.environment)
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            let agent = try AgentProcess(
                [
                    "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"),
                    "--sync-interval", "100ms", "--snapshot-interval", "1s", "--retention", "none",
                ], logPath: directory.file("agent.log"), environment: environment)
            for _ in 0..<30 {  // Paces the commits over 3 s: several snapshots, chains to prune.
                try LedgerDatabase.commitNext(on: app)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let prune = ["prune", "s3://walship/db", "--retention", "1s", "--retention-grace", "0s", "--json"]
            let planned = try Self.json(try WalshipBinary.run(prune + ["--dry-run"], environment: environment))
            let keys = try #require(planned["keys"] as? [String])
            #expect(!keys.isEmpty, "\(planned)")
            for behaviour in [FaultProxy.DeleteBehaviour.keep, .deny] {
                proxy.setDeletes(behaviour)
                let run = try WalshipBinary.run(prune, environment: environment)
                #expect(run.status == 4, "\(behaviour): \(run.stdout)\(run.stderr)")
                #expect(
                    run.stderr.contains(keys[0]) || run.stdout.contains(keys[0]),
                    "\(behaviour): \(run.stdout)\(run.stderr)")
                if behaviour == .deny {
                    #expect(
                        run.stdout.contains("AccessDenied") || run.stderr.contains("AccessDenied"),
                        "\(run.stdout)\(run.stderr)")
                }
            }
            proxy.setDeletes(.forward)
            let run = try WalshipBinary.run(prune, environment: environment)
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(try Self.json(run)["keys"] as? [String] == keys)
            let latest = try WalshipBinary.run(
                ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"], environment: environment)
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 40)
        }
    }
}
