import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

/// A seeded application workload in this process (the agent is the walship executable, another
/// process): inserts, updates, deletes, large rows, schema changes and a VACUUM, each commit
/// setting `meta.k` to its number and recording the database's content hash as the oracle.
struct RecordedWorkload {
    var hashes: [Int64: String] = [:]
    var commits: Int64 = 0

    mutating func run(path: String, commits count: Int, seed: UInt64, pause: Duration) throws {
        var random = SeededGenerator(seed: seed)
        let app = try Connection(path: path)
        defer { app.close() }
        try app.setBusyTimeout(milliseconds: 5000)
        if commits == 0 {
            try app.execute(
                "CREATE TABLE IF NOT EXISTS meta(k INTEGER NOT NULL); INSERT INTO meta SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM meta)"
            )
            try app.execute("CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        }
        for _ in 0..<count {
            commits += 1
            let choice = Int.random(in: 0..<100, using: &random)
            var sql = "BEGIN IMMEDIATE;"
            switch choice {
            case 0..<45:
                sql +=
                    "INSERT INTO items(name, data) VALUES ('n\(commits)', randomblob(\(Int.random(in: 10...3000, using: &random))));"
            case 45..<65:
                sql += "UPDATE items SET name = name || 'u', data = randomblob(200) WHERE id % 7 = \(commits % 7);"
            case 65..<80:
                sql += "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 3);"
            case 80..<85:
                sql += "INSERT INTO items(name, data) VALUES ('big', randomblob(200000));"
            case 85..<90:
                sql +=
                    "CREATE TABLE IF NOT EXISTS extra\(commits % 3)(x TEXT); INSERT INTO extra\(commits % 3) VALUES ('\(commits)');"
            case 90..<94:
                sql += "DROP TABLE IF EXISTS extra\(commits % 3);"
            case 94..<97:
                sql += "CREATE INDEX IF NOT EXISTS items_name ON items(name);"
            default:
                sql += "DROP INDEX IF EXISTS items_name;"
            }
            sql += "UPDATE meta SET k = \(commits); COMMIT;"
            try app.execute(sql)
            if commits % 97 == 0 {
                try app.execute("VACUUM")  // Its own transaction; content unchanged.
            }
            hashes[commits] = try ContentHash.of(connection: app)
            if pause > .zero { Thread.sleep(forTimeInterval: BackgroundWriter.seconds(pause)) }
        }
    }
}

extension CLIIntegration {
    @Suite("walship restore")
    struct RestoreCommandTests {
        static func k(of path: String) throws -> Int64 {
            let connection = try Connection(path: path, mode: [.readOnly])
            defer { connection.close() }
            return try connection.scalarInt("SELECT k FROM meta") ?? -1
        }

        @Test(
            "restores at 50 random times and 50 random txids equal the recorded state at that point",
            arguments: ["file", "s3"])
        func randomPointsMatchTheOracle(store: String) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let server = store == "s3" ? try await S3TestServer.start(buckets: ["walship"]) : nil
            defer { server?.stop() }
            let url = server == nil ? ReplicateCommandTests.replicaURL(directory) : "s3://walship/db"
            let environment =
                server.map {
                    [
                        "AWS_ENDPOINT_URL": $0.endpoint, "AWS_ACCESS_KEY_ID": $0.accessKeyID,
                        "AWS_SECRET_ACCESS_KEY": $0.secretAccessKey,
                    ]
                } ?? [:]
            func restore(_ extra: [String], to name: String) throws -> CommandRunner.Output {
                try WalshipBinary.run(
                    ["restore", url, "-o", directory.file(name), "--quiet"] + extra, environment: environment)
            }
            let database = directory.file("app.db")
            var workload = RecordedWorkload()
            let setup = try Connection(path: database)
            _ = try setup.scalarText("PRAGMA journal_mode=WAL")
            setup.close()
            try workload.run(path: database, commits: 20, seed: 42, pause: .zero)
            let agent = try AgentProcess(
                [
                    "replicate", database, url, "--state-dir", directory.file("state"), "--sync-interval", "200ms",
                    "--log-level", "debug",
                ], logPath: directory.file("agent.log"), environment: environment)
            #expect(agent.waitForLog("snapshot taken"))
            try workload.run(path: database, commits: 400, seed: 43, pause: .milliseconds(15))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")

            // The audit reads the objects where they are stored (rclone keeps each as a file).
            let replica = Replica(
                store: try FileObjectStore(
                    root: server.map { "\($0.dataRoot)/walship/db" } ?? directory.file("replica")),
                layout: ReplicaLayout(prefix: ""))
            let audit = try await ReplicaAudit.run(replica: replica)
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            let transactions = try #require(audit.generations.last?.transactions)
            #expect(
                transactions.count >= 400,
                "\(agent.log.split(separator: "\n").filter { $0.contains("generation") || $0.contains("error") }.joined(separator: "\n"))"
            )
            var random = SeededGenerator(seed: 7)
            var previous: (txid: UInt64, k: Int64)?
            for txid in Set((0..<50).map({ _ in transactions.randomElement(using: &random)!.txid })).sorted() {
                let name = "txid-\(txid).db"
                let output = try restore(["--txid", String(txid)], to: name)
                #expect(output.status == 0, "\(output.stderr)")
                let k = try Self.k(of: directory.file(name))
                #expect(
                    try ContentHash.of(path: directory.file(name)) == workload.hashes[k],
                    "txid \(txid) is not the state after commit \(k)")
                if let previous, previous.txid < txid {
                    #expect(k - previous.k <= Int64(txid - previous.txid) && k >= previous.k)
                }
                previous = (txid, k)
            }
            let first = transactions.first!.commitMs
            let last = transactions.last!.commitMs
            for target in Set((0..<50).map { _ in UInt64.random(in: first...(last + 500), using: &random) }).sorted() {
                let name = "time-\(target).db"
                let output = try restore(
                    ["--at", Timestamp.format(milliseconds: target)], to: name)
                #expect(output.status == 0, "\(output.stderr)")
                let k = try Self.k(of: directory.file(name))
                #expect(try ContentHash.of(path: directory.file(name)) == workload.hashes[k])
                // The last transaction observed at or before the target, never one after it.
                let expected = transactions.last { $0.commitMs <= target }!.txid
                let byTxid = try restore(
                    ["--txid", String(expected)], to: "check-\(target).db")
                #expect(byTxid.status == 0)
                #expect(try Self.k(of: directory.file("check-\(target).db")) == k, "time \(target)")
                FileSystem.removeDatabaseFiles(directory.file(name))
                FileSystem.removeDatabaseFiles(directory.file("check-\(target).db"))
            }
            // Outside the window: before the first snapshot is exit 6, with the window in the message.
            let early = try restore(["--at", "2001-01-01T00:00:00Z"], to: "early.db")
            #expect(early.status == 6)
            #expect(early.stderr.contains("restore window"))
            #expect(!FileManager.default.fileExists(atPath: directory.file("early.db")))
        }

        @Test("one flipped byte in any object makes restore fail with exit 9 naming it, and leaves no file")
        func corruptObjectIsNamed() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 200)
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("snapshot taken"))
            _ = try WriterProcess(script: WALBoundTests.writerScript, database: directory.file("app.db"), seconds: 1)
                .wait()
            #expect(agent.stop() == 0)  // SIGTERM ships everything committed before the agent exits.
            let objects = try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica"))
                .filter { $0.hasSuffix(".segment") || $0.hasSuffix(".snapshot") }
            #expect(objects.count >= 3)
            var random = SeededGenerator(seed: 11)
            for object in objects {
                let path = directory.file("replica/\(object)")
                var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                let position = Int.random(in: 0..<bytes.count, using: &random)
                bytes[position] ^= 0x04
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let output = try ReplicateCommandTests.restore(directory, [], to: "out.db")
                #expect(output.status == 9, "byte \(position) of '\(object)': \(output.stderr)")
                #expect(output.stderr.contains(FileSystem.fileName(of: object)), "\(output.stderr)")
                #expect(!FileManager.default.fileExists(atPath: directory.file("out.db")))
                bytes[position] ^= 0x04
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }
            #expect(try ReplicateCommandTests.restore(directory, [], to: "out.db").status == 0)

            // A segment deleted from the middle: list says so, the latest restore exits 9 naming
            // the missing txids (it used to restore the point before them with exit 0), and
            // --nearest-before restores that point (found by review).
            let segments = objects.filter { $0.hasSuffix(".segment") }.sorted()
            try #require(segments.count >= 3)
            try FileManager.default.removeItem(atPath: directory.file("replica/\(segments[1])"))
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory)])
            #expect(list.status == 0)
            #expect(list.stdout.contains("missing: the segments holding txids"), "\(list.stdout)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "hole.db")
            #expect(latest.status == 9, "\(latest.stderr)")
            #expect(latest.stderr.contains("are missing from the replica"), "\(latest.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("hole.db")))
            let nearest = try ReplicateCommandTests.restore(directory, ["--nearest-before"], to: "hole.db")
            #expect(nearest.status == 0, "\(nearest.stderr)")
        }
    }
}

extension CLIIntegration {
    @Suite("walship restore lineage")
    struct LineageCommandTests {
        static func generations(_ directory: TemporaryDirectory) throws -> (ids: [String], forks: [[String]]) {
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let generations = (object?["generations"] as? [[String: Any]]) ?? []
            return (generations.compactMap { $0["id"] as? String }, (object?["forks"] as? [[String]]) ?? [])
        }

        @Test("a restored file replicated again, in place or elsewhere, starts a new generation linked to the old one")
        func restoredFileStartsNewGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            do {
                let app = try Connection(path: database)
                defer { app.close() }
                var agent = try ReplicateCommandTests.agent(directory)
                #expect(agent.waitForLog("snapshot taken"))
                for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
                try await agent.waitUntilShipped(commitsAfterSnapshot: 5, replicaDirectory: directory.file("replica"))
                #expect(agent.stop() == 0)
                agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
                #expect(agent.wait() == 0)
            }
            #expect(try Self.generations(directory).ids.count == 1)
            // In place: the app is stopped, the file is restored over it, the agent restarts.
            let restored = try WalshipBinary.run([
                "restore", ReplicateCommandTests.replicaURL(directory), "-o", database, "--force", "--quiet",
            ])
            #expect(restored.status == 0, "\(restored.stderr)")
            var agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            #expect(agent.log.contains("new generation"), "\(agent.log.suffix(2000))")
            let afterInPlace = try Self.generations(directory)
            #expect(afterInPlace.ids.count == 2 && afterInPlace.forks.isEmpty, "\(afterInPlace)")
            // Elsewhere, by an agent with no state: a third generation, still one lineage.
            let copy = try ReplicateCommandTests.restore(directory, [], to: "copy.db")
            #expect(copy.status == 0, "\(copy.stderr)")
            try FileManager.default.removeItem(atPath: database)
            try FileManager.default.moveItem(atPath: directory.file("copy.db"), toPath: database)
            try FileManager.default.removeItem(atPath: directory.file("state"))
            do {
                let app = try Connection(path: database)
                defer { app.close() }
                for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            }
            agent = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(agent.wait() == 0, "\(agent.log.suffix(2000))")
            let after = try Self.generations(directory)
            #expect(after.ids.count == 3 && after.forks.isEmpty, "\(after)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 18)
        }

        @Test(
            "two agents continuing one generation from a copied state directory are a fork: list shows it, restore exits 11 past the branch (found by review)"
        )
        func copiedStateIsAFork() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, first) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try await first.waitUntilShipped(commitsAfterSnapshot: 3, replicaDirectory: directory.file("replica"))
            _ = try CommandRunner.run("/bin/cp", ["-r", directory.file("state"), directory.file("state2")])
            // As on a second machine sharing the replica (on one host the replica lock would make
            // the second agent wait).
            let second = try AgentProcess(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state2"), "--sync-interval", "200ms",
                ], logPath: directory.file("agent2.log"), environment: ["WALSHIP_TEST_WITHOUT_REPLICA_LOCK": "1"])
            #expect(second.waitForLog("continuing generation"), "\(second.log)")
            for _ in 0..<5 {
                try LedgerDatabase.commitNext(on: app)
                try await Task.sleep(for: .milliseconds(300))  // Paces the commits both agents ship.
            }
            #expect(first.stop() == 0)
            #expect(second.stop() == 0)
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
            let forked = try #require(object?["forked_generations"] as? [[String: Any]], "\(list.stdout)")
            try #require(forked.count == 1, "\(list.stdout)")
            let branch = try #require(forked[0]["from_txid"] as? Int)
            let refused = try ReplicateCommandTests.restore(directory, [], to: "out.db")
            #expect(refused.status == 11, "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("out.db")))
            let before = try ReplicateCommandTests.restore(directory, ["--txid", String(branch - 1)], to: "before.db")
            #expect(before.status == 0, "\(before.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("before.db")) == Int64(10 + branch - 1))
        }

        @Test(
            "a second agent on the same host with a copy of the state (a rolling deploy) waits while the first replicates, then takes over: no fork, and the latest restore is the application's state"
        )
        func rollingDeployWaits() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, first) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            _ = try CommandRunner.run("/bin/cp", ["-r", directory.file("state"), directory.file("state2")])
            let arguments = [
                "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state2"), "--sync-interval", "200ms",
            ]
            let second = try AgentProcess(arguments, logPath: directory.file("agent2.log"))
            #expect(second.waitForLog("waiting for it to stop"), "\(second.log)")
            // A cron run beside them does not wait: exit 3.
            let once = try WalshipBinary.run(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state3"), "--once",
                ])
            #expect(once.status == 3, "\(once.stderr)")
            #expect(once.stderr.contains("replica lock"), "\(once.stderr)")
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            #expect(first.stop() == 0)
            #expect(second.waitForLog("the other agent stopped"), "\(second.log)")
            #expect(second.waitForLog("snapshot taken"), "\(second.log)")
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: app) }
            #expect(second.stop() == 0, "\(second.log)")
            let listed = try Self.generations(directory)
            #expect(listed.forks.isEmpty, "\(listed)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 22)
        }

        /// Issue 14: the replica lock stayed on the replaced file, so an agent starting on the new
        /// one took the lock too and both replicated it (a fork).
        @Test(
            "after mv new.db app.db, the running agent's replica lock moves to the new file: a second agent with a copy of the state waits, no fork"
        )
        func replicaLockFollowsReplacedFile() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, first) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            // An empty WAL, so that SQLite reads the new file alone (the agent keeps the `-wal`).
            try app.setBusyTimeout(milliseconds: 5000)
            #expect(try app.checkpoint(.truncate).walFrames == 0)
            app.close()
            try LedgerDatabase.create(at: directory.file("new.db"), rows: 20)
            #expect(rename(directory.file("new.db"), database) == 0)
            #expect(first.waitForLog("the database file was replaced"), "\(first.log)")
            #expect(first.waitForLog("snapshot taken", after: "the database file was replaced"), "\(first.log)")
            _ = try CommandRunner.run("/bin/cp", ["-r", directory.file("state"), directory.file("state2")])
            let second = try AgentProcess(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state2"), "--sync-interval", "200ms",
                ], logPath: directory.file("agent2.log"))
            #expect(second.waitForLog("waiting for it to stop"), "\(second.log)")
            let replaced = try Connection(path: database)
            defer { replaced.close() }
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: replaced) }
            #expect(first.stop() == 0, "\(first.log)")
            #expect(second.waitForLog("the other agent stopped"), "\(second.log)")
            for _ in 0..<2 { try LedgerDatabase.commitNext(on: replaced) }
            #expect(second.stop() == 0, "\(second.log)")
            let listed = try Self.generations(directory)
            #expect(listed.forks.isEmpty, "\(listed)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 26)
        }

        @Test(
            "two agents on one database and replica (each with its own state directory) are a fork: list shows it, restore exits 11 unless --generation picks one"
        )
        func twoAgentsAreAFork() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, app, first) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try await first.waitUntilShipped(commitsAfterSnapshot: 3, replicaDirectory: directory.file("replica"))
            // A second agent on the same database, without the first one's state (a second pod).
            let second = try AgentProcess(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state2"), "--once",
                ], logPath: directory.file("agent2.log"), environment: ["WALSHIP_TEST_WITHOUT_REPLICA_LOCK": "1"])
            #expect(second.wait() == 0, "\(second.log.suffix(2000))")
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            #expect(first.stop() == 0)  // SIGTERM ships everything committed before the agent exits.
            let listed = try Self.generations(directory)
            #expect(listed.ids.count == 2 && listed.forks == [listed.ids.sorted()], "\(listed)")
            let text = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory)])
            #expect(text.stdout.contains("fork: generations"), "\(text.stdout)")
            let refused = try ReplicateCommandTests.restore(directory, [], to: "out.db")
            #expect(refused.status == 11, "\(refused.stderr)")
            #expect(refused.stderr.contains("--generation"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("out.db")))
            for id in listed.ids {
                let picked = try ReplicateCommandTests.restore(directory, ["--generation", id], to: "\(id).db")
                #expect(picked.status == 0, "\(picked.stderr)")
            }
            let counts = try listed.ids.map {
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("\($0).db"))
            }
            #expect(counts.sorted() == [13, 16], "\(counts)")
        }
    }
}

extension CLIIntegration {
    @Suite("signals during start-up")
    struct StartupSignalTests {
        /// Starts walship, stops it at once, sends SIGTERM and lets it run: the signal arrives
        /// before the command has installed its handler.
        static func terminatedAtStart(_ arguments: [String], log: String) throws -> Int32 {
            let process = try AgentProcess(arguments, logPath: log)
            kill(process.pid, SIGSTOP)
            kill(process.pid, SIGTERM)
            kill(process.pid, SIGCONT)
            return process.wait()
        }

        @Test("SIGTERM while restore starts cancels it with exit 130, leaving neither output nor temporary files")
        func restoreCancelledAtStart() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 2000)
            #expect(try ReplicateCommandTests.agent(directory, extra: ["--once"]).wait() == 0)
            try FileManager.default.createDirectory(atPath: directory.file("out"), withIntermediateDirectories: true)
            let status = try Self.terminatedAtStart(
                ["restore", ReplicateCommandTests.replicaURL(directory), "-o", directory.file("out/app.db")],
                log: directory.file("restore.log"))
            #expect(
                status == 130, "\((try? String(contentsOfFile: directory.file("restore.log"), encoding: .utf8)) ?? "")")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("out")).isEmpty)
        }

        @Test(
            "a stop right after a new generation starts waits for its first snapshot, so the latest commits stay restorable (found by review)"
        )
        func stopWaitsForFirstSnapshot() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 500)
            #expect(try ReplicateCommandTests.agent(directory, extra: ["--once"]).wait() == 0)
            // While no agent runs, the app commits and closes its last connection (the WAL goes),
            // and the state directory has no page hashes to prove continuity by content with.
            do {
                let app = try Connection(path: database)
                defer { app.close() }
                for _ in 0..<20 { try LedgerDatabase.commitNext(on: app) }
            }
            try DowntimeTests.forgetPageHashes(directory)
            let status = try Self.terminatedAtStart(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"),
                ], log: directory.file("agent.log"))
            let log = (try? String(contentsOfFile: directory.file("agent.log"), encoding: .utf8)) ?? ""
            #expect(status == 0, "\(log)")
            #expect(log.contains("new generation"), "\(log)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 520)
        }

        @Test(
            "the wait for a new generation's first snapshot ends at shutdown-timeout with exit 4, and the next run recovers (found by review)"
        )
        func firstSnapshotWaitIsBounded() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            // About 100 MB of incompressible rows: a gzip snapshot takes seconds.
            try LedgerDatabase.create(at: database, rows: 100_000, payloadBytes: 1000)
            let arguments = [
                "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--compression", "gzip",
            ]
            let status = try Self.terminatedAtStart(
                arguments + ["--shutdown-timeout", "200ms"], log: directory.file("agent.log"))
            let log = (try? String(contentsOfFile: directory.file("agent.log"), encoding: .utf8)) ?? ""
            #expect(status == 4, "\(log.suffix(2000))")
            #expect(log.contains("had its first snapshot"), "\(log.suffix(2000))")
            let again = try AgentProcess(arguments + ["--once"], logPath: directory.file("agent2.log"))
            #expect(again.wait(timeout: 300) == 0, "\(again.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 100_000)
        }

        @Test("SIGTERM while replicate starts stops it gracefully (exit 0), not by the default action")
        func replicateStoppedAtStart() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            let status = try Self.terminatedAtStart(
                [
                    "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"),
                ], log: directory.file("agent.log"))
            #expect(status == 0, "\((try? String(contentsOfFile: directory.file("agent.log"), encoding: .utf8)) ?? "")")
        }
    }
}
