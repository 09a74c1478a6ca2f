import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 19 (item 2): the status page `/` and `/api/v1/status` of a running agent.
    @Suite("status page and API")
    struct StatusPageTests {
        static func status(port: UInt16, query: String = "") throws -> [String: Any] {
            let response = try LoopbackHTTP.request(port: port, path: "/api/v1/status" + query)
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        }

        static func database(_ status: [String: Any]) throws -> [String: Any] {
            try #require((status["databases"] as? [[String: Any]])?.first)
        }

        /// Runs a command the page printed (plain words, as `Shell.quote` leaves these) in `directory`.
        static func run(
            _ command: String, in directory: TemporaryDirectory, environment: [String: String]
        ) throws
            -> CommandRunner.Output
        {
            let words = command.split(separator: " ").map(String.init)
            #expect(words.first == "walship", "\(command)")
            return try CommandRunner.run(
                try WalshipBinary.path(), Array(words.dropFirst()), environment: environment,
                currentDirectory: directory.path)
        }

        @Test(
            "on S3, the status API follows replication from the agent's memory (page views make no store request), and its restore commands restore the latest point and a chosen time"
        )
        func statusFollowsReplication() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let s3 = try await ProxiedS3(directory: directory)
            defer { s3.stop() }
            let (proxy, environment) = (s3.proxy, s3.environment)
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 5)
            let app = try Connection(path: database)
            defer { app.close() }
            let agent = try AgentProcess(
                [
                    "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"),
                    "--sync-interval", "100ms", "--http-addr", "127.0.0.1:0",
                ], logPath: directory.file("agent.log"), environment: environment)
            defer { agent.stop() }
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let port = try #require(agent.httpPort)
            // Txids 1...20; the time between the two halves is a restore target.
            for _ in 0..<10 { try LedgerDatabase.commitNext(on: app) }
            // The agent records commit times when it reads them: the first half is shipped first.
            try await agent.waitUntilShipped(txid: 10, httpPort: port)
            let middleHash = try ContentHash.of(connection: app)
            let middle = Timestamp.format(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
            try await Task.sleep(for: .milliseconds(300))  // The second half's commit times come after `middle`.
            for _ in 0..<10 { try LedgerDatabase.commitNext(on: app) }

            var db: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                db = try Self.database(try Self.status(port: port))
                let window = (db["listing"] as? [String: Any])?["restoreWindow"] as? [String: Any]
                if window?["latestTxid"] as? Int == 20 { break }
                try await Task.sleep(for: .milliseconds(200))  // Polls the event with a deadline.
            }
            #expect(db["state"] as? String == "replicating", "\(db)")
            #expect(db["shippedTxid"] as? Int == 20, "\(db)")
            #expect(db["path"] as? String == database)
            #expect(db["replica"] as? String == "s3://walship/db")
            #expect(db["lastUploadAt"] is String && db["generation"] is String, "\(db)")
            let listing = try #require(db["listing"] as? [String: Any])
            let generations = try #require(listing["generations"] as? [[String: Any]])
            #expect(generations.count == 1)
            #expect((generations.first?["snapshots"] as? [Any])?.count == 1)
            #expect((listing["restoreWindow"] as? [String: Any])?["latestTxid"] as? Int == 20, "\(listing)")

            // Views of the page and the API are answered from memory.
            let requestsBefore = proxy.stats["requests"] ?? -1
            for _ in 0..<10 {
                let page = try LoopbackHTTP.request(port: port, path: "/")
                #expect(page.status == 200 && page.body.contains("</html>"))
                _ = try Self.status(port: port, query: "?at=-1s")
            }
            #expect(proxy.stats["requests"] == requestsBefore)

            // The printed commands restore what the application had.
            let latest = try #require(db["restoreLatest"] as? String)
            let restored = try Self.run(latest, in: directory, environment: environment)
            #expect(restored.status == 0, "\(restored.stderr)")
            let final = try ContentHash.of(connection: app)
            #expect(try ContentHash.of(path: directory.file("app-restored.db")) == final)
            for suffix in ["", "-wal", "-shm"] {
                try? FileManager.default.removeItem(atPath: directory.file("app-restored.db" + suffix))
            }
            let encoded = try #require(middle.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            let point = try #require(
                try Self.database(try Self.status(port: port, query: "?at=\(encoded)"))["point"] as? [String: Any])
            #expect(point["time"] as? String == middle, "\(point)")
            let command = try #require(point["command"] as? String, "\(point)")
            let atMiddle = try Self.run(command, in: directory, environment: environment)
            #expect(atMiddle.status == 0, "\(atMiddle.stderr)")
            #expect(try ContentHash.of(path: directory.file("app-restored.db")) == middleHash)
            // A time outside the window says so instead of giving a command.
            let outside = try #require(
                try Self.database(try Self.status(port: port, query: "?at=2000-01-01T00:00:00Z"))["point"]
                    as? [String: Any])
            #expect(
                outside["command"] == nil && (outside["error"] as? String)?.contains("outside") == true, "\(outside)")
        }

        @Test(
            "a real browser renders the page (no script, no external asset) with the database, the restore window and a chosen time's command"
        )
        func browserRendersThePage() async throws {
            let chromium = try #require(CommandRunner.which("chromium"), "chromium is missing: run scripts/setup")
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try ReplicateCommandTests.replicatedLedger(
                directory, rows: 5, extra: ["--http-addr", "127.0.0.1:0"])
            defer {
                app.close()
                agent.stop()
            }
            let port = try #require(agent.httpPort)
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try await agent.waitUntilShipped(commitsAfterSnapshot: 3, replicaDirectory: directory.file("replica"))
            // Kept: `?at=-1s` must fall inside the restore window, which begins at the snapshot.
            try await Task.sleep(for: .seconds(1))
            let page = try LoopbackHTTP.request(port: port, path: "/")
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(!page.body.contains("<script") && !page.body.contains("src="), "the page loads nothing else")
            let dom = try CommandRunner.run(
                chromium,
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                    "http://127.0.0.1:\(port)/?at=-1s",
                ])
            #expect(dom.status == 0, "\(dom.stderr.suffix(500))")
            #expect(dom.stdout.contains(directory.file("app.db")), "\(dom.stdout.prefix(2000))")
            #expect(dom.stdout.contains("restore window"))
            #expect(
                dom.stdout.contains(
                    "walship restore \(ReplicateCommandTests.replicaURL(directory)) -o ./app-restored.db --at "))
            #expect(dom.stdout.contains("replicating"))
        }

        @Test(
            "the endpoint answers 1,000 connections at once, malformed and stalled ones among them, and serves on afterwards"
        )
        func thousandConnections() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try ReplicateCommandTests.replicatedLedger(
                directory, rows: 5, extra: ["--http-addr", "127.0.0.1:0"])
            defer {
                app.close()
                agent.stop()
            }
            let port = try #require(agent.httpPort)
            let python = CommandRunner.which("python3") ?? "/usr/bin/python3"
            // 20 stalled clients hold a thread for their 5 s each; 32 threads serve the rest.
            let flood = try CommandRunner.run(
                python, [TestScripts.path("http_flood.py"), String(port), "1000", "20", "/api/v1/status", "150"])
            #expect(flood.status == 0, "\(flood.stderr)")
            let summary = try #require(
                try JSONSerialization.jsonObject(with: Data(flood.stdout.utf8)) as? [String: Any])
            let good = try #require(summary["good"] as? Int)
            #expect((summary["good_answered"] as? [String: Int])?["200"] == good, "\(summary)")
            #expect(summary["unfinished"] as? Int == 0, "\(summary)")
            #expect(agent.isRunning)
            #expect(try LoopbackHTTP.request(port: port, path: "/healthz").status == 200)
            #expect(try Self.database(try Self.status(port: port))["state"] as? String == "replicating")
        }
    }
}
