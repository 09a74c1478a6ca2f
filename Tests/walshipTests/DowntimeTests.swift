import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

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
            try await agent.waitUntilShipped(commitsAfterSnapshot: 5, replicaDirectory: directory.file("replica"))
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
        /// commits and a TRUNCATE checkpoint, then `afterTruncate` commits (the WAL then holds frames
        /// the file lacks), then runs `--once`; returns that run's log. With `forgetPageHashes`,
        /// the state directory loses its page hashes meanwhile.
        static func truncateDuringDowntime(
            _ directory: TemporaryDirectory, watched: Int, unwatched: Int, afterTruncate: Int = 0,
            forgetPageHashes: Bool = false
        ) async throws
            -> String
        {
            var (_, app, agent) = try ReplicateCommandTests.replicatedLedger(directory, rows: 10)
            defer { app.close() }
            for _ in 0..<watched { try LedgerDatabase.commitNext(on: app) }
            try await agent.waitUntilShipped(
                commitsAfterSnapshot: watched, replicaDirectory: directory.file("replica"))
            #expect(agent.stop() == 0)
            for _ in 0..<unwatched { try LedgerDatabase.commitNext(on: app) }
            _ = try app.checkpoint(.truncate)
            for _ in 0..<afterTruncate { try LedgerDatabase.commitNext(on: app) }
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
            "a TRUNCATE checkpoint while the agent was down continues the generation by content: the unwatched commits, and those the application made after it before the agent started (WAL frames the file lacks, read from the WAL), ship as one transaction read from the database",
            arguments: [0, 3]
        )
        func truncateDuringDowntimeContinuesByContent(afterTruncate: Int) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let log = try await Self.truncateDuringDowntime(
                directory, watched: 5, unwatched: 7, afterTruncate: afterTruncate)
            #expect(!log.contains("new generation"), "\(log.suffix(2000))")
            #expect(log.contains("shipped as one transaction read from the database file"), "\(log.suffix(2000))")
            #expect(log.contains("db.pages_from_wal=0") == (afterTruncate == 0), "\(log.suffix(2000))")
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            #expect(list.stdout.components(separatedBy: "\"id\"").count == 2, "one generation: \(list.stdout)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(
                latest.stderr.contains("restore.checksum=") && !latest.stderr.contains("without the database checksum"))
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 22 + afterTruncate)
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
