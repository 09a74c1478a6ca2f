import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    @Suite("walship replicate keeps the WAL bounded")
    struct WALBoundTests {
        static let writerScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/ledger_writer.py").path

        /// The bound on the WAL's size under the sustained writers below. Without the agent's
        /// checkpoints it grows with every commit (about 300 MB in these 60 s); with them it peaked
        /// at 5.4 to 7.2 MB in CI runs, and at 8.4 MB on a machine running two other agents' loads
        /// beside the tests. A bound about 3x the usual peak tells a bounded WAL from one that grows.
        static let walBound: Int64 = 20_000_000

        @Test("under 60 s of sustained writes from another process the WAL stays bounded (20 MB), and nothing is lost")
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
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            print("wal bound: \(commits) commits in 60 s, largest WAL \(largest) bytes")
            #expect(commits > 6000)
            #expect(largest < Self.walBound)
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
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let restarts = agent.log.components(separatedBy: "restart checkpoint lock_ms").count - 1
            let restartsBusy = agent.log.components(separatedBy: "restart checkpoint busy").count - 1
            print(
                "two buckets: \(commits) commits, largest WAL \(largest) bytes, app TRUNCATE \(truncates) ok \(busy) busy, agent RESTART \(restarts) ok \(restartsBusy) busy"
            )
            #expect(commits > 2000)
            #expect(largest < Self.walBound)
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
