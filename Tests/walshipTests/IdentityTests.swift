import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 16, item 1: which database a replica holds.
    @Suite("database identity")
    struct IdentityTests {
        static func agent(
            _ database: String, _ directory: TemporaryDirectory, _ log: String, state: String = "state"
        ) throws -> AgentProcess {
            try AgentProcess(
                [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file(state), "--once",
                ], logPath: directory.file(log))
        }

        /// A disaster drill: restores the replica (at `txid`, else latest) to drill/app.db with
        /// `state` as its state directory, and commits `commits` ledger transactions on it.
        static func restoreDrill(
            _ directory: TemporaryDirectory, txid: Int? = nil, state: String, commits: Int, payloadBytes: Int = 200
        ) throws -> String {
            let drill = directory.file("drill/app.db")
            try FileManager.default.createDirectory(atPath: directory.file("drill"), withIntermediateDirectories: true)
            let restored = try WalshipBinary.run(
                ["restore", ReplicateCommandTests.replicaURL(directory), "-o", drill]
                    + (txid.map { ["--txid", String($0)] } ?? [])
                    + ["--state-dir", directory.file(state), "--quiet"])
            #expect(restored.status == 0, "\(restored.stderr)")
            let drillApp = try Connection(path: drill)
            for _ in 0..<commits { try LedgerDatabase.commitNext(on: drillApp, payloadBytes: payloadBytes) }
            drillApp.close()
            return drill
        }

        /// `walship list --json` of the test replica.
        static func list(_ directory: TemporaryDirectory) throws -> (text: String, object: [String: Any]) {
            let output = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
            return (output.stdout, object)
        }

        /// The latest restore succeeds and holds `count` ledger transactions.
        static func expectLatest(_ directory: TemporaryDirectory, count: Int64) throws {
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == count)
        }

        @Test(
            "another database with the same file name is refused at start (exit 14) and the replica is left as it was"
        )
        func anotherDatabaseIsRefused() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(atPath: directory.file("a"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.file("b"), withIntermediateDirectories: true)
            try LedgerDatabase.create(at: directory.file("a/app.db"), rows: 10)
            try LedgerDatabase.create(at: directory.file("b/app.db"), rows: 3)
            #expect(try Self.agent(directory.file("a/app.db"), directory, "a.log").wait() == 0)
            let before = try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica")).sorted()
            let other = try Self.agent(directory.file("b/app.db"), directory, "b.log")
            #expect(other.wait() == 14, "\(other.log)")
            #expect(other.log.contains("belongs to another database"), "\(other.log)")
            #expect(try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica")).sorted() == before)
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 10, "\(latest.stderr)")
        }

        @Test(
            "a database restored to another path (a disaster drill) replicates to its replica again: a new generation linked to the restore point, not a fork"
        )
        func restoredElsewhereReplicatesAgain() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            let app = try Connection(path: directory.file("app.db"))
            #expect(try Self.agent(directory.file("app.db"), directory, "1.log").wait() == 0)
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: app) }
            app.close()
            #expect(try Self.agent(directory.file("app.db"), directory, "2.log").wait() == 0)
            // The drill: restore an earlier point elsewhere, and replicate that database instead.
            let drill = try Self.restoreDrill(directory, txid: 0, state: "state", commits: 1)
            let agent = try Self.agent(drill, directory, "3.log")
            #expect(agent.wait() == 0, "\(agent.log)")
            #expect(agent.log.contains("database restored from this replica"), "\(agent.log)")
            let (listed, object) = try Self.list(directory)
            #expect((object["forks"] as? [Any])?.isEmpty == true, "\(listed)")
            #expect((object["generations"] as? [Any])?.count == 2, "\(listed)")
            try Self.expectLatest(directory, count: 11)
            // A second start of the drill database continues its generation (the marker is used once).
            let again = try Self.agent(drill, directory, "4.log")
            #expect(again.wait() == 0, "\(again.log)")
            #expect(!again.log.contains("new generation"), "\(again.log)")
        }

        @Test(
            "a drill copy replicated while the original's agent runs on is a fork: latest and --txid refuse (exit 11) instead of returning the drill's data, --generation picks either"
        )
        func drillWhileOriginalRunsIsAFork() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            let app = try Connection(path: directory.file("app.db"))
            defer { app.close() }
            let production = try AgentProcess(
                [
                    "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"),
                ], logPath: directory.file("production.log"))
            #expect(production.waitForLog("page hashes complete"), "\(production.log)")
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: app) }
            // The drill: restore an earlier point elsewhere and replicate it, with its own state.
            let drill = try Self.restoreDrill(directory, txid: 0, state: "drill-state", commits: 3)
            let drillAgent = try Self.agent(drill, directory, "drill.log", state: "drill-state")
            #expect(drillAgent.wait() == 0, "\(drillAgent.log)")
            // The original goes on, into the txids the drill's generation uses.
            for _ in 0..<6 { try LedgerDatabase.commitNext(on: app) }
            #expect(production.stop() == 0, "\(production.log)")
            let (listed, object) = try Self.list(directory)
            let forks = try #require(object["forks"] as? [[String]], "\(listed)")
            #expect(forks.count == 1 && forks.first?.count == 2, "\(listed)")
            for target in [[], ["--txid", "3"]] {
                let refused = try ReplicateCommandTests.restore(directory, target, to: "refused.db")
                #expect(refused.status == 11, "restore \(target): \(refused.stderr)")
                #expect(!FileManager.default.fileExists(atPath: directory.file("refused.db")))
            }
            let productionGeneration = try #require(
                production.log.firstMatch(of: /generation=([0-9a-f]{16})/).map { String($0.1) })
            let chosen = try ReplicateCommandTests.restore(
                directory, ["--generation", productionGeneration], to: "production.db")
            #expect(chosen.status == 0, "\(chosen.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("production.db")) == 20)
            // Production's agent restarts: it leaves the forked generation for a new one, and the
            // latest restore is production's database again.
            let restarted = try Self.agent(directory.file("app.db"), directory, "production-2.log")
            #expect(restarted.wait() == 0, "\(restarted.log)")
            #expect(restarted.log.contains("shipped the same txids at the same time"), "\(restarted.log)")
            try LedgerDatabase.commitNext(on: app)
            #expect(try Self.agent(directory.file("app.db"), directory, "production-3.log").wait() == 0)
            try Self.expectLatest(directory, count: 21)
        }

        @Test(
            "one database reached through a symlinked directory or a relative path is the same database: same state, same generation"
        )
        func symlinkedPathIsTheSameDatabase() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(atPath: directory.file("data"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("link"), withDestinationPath: directory.file("data"))
            try LedgerDatabase.create(at: directory.file("data/app.db"), rows: 10)
            #expect(try Self.agent(directory.file("data/app.db"), directory, "1.log").wait() == 0)
            let app = try Connection(path: directory.file("data/app.db"))
            try LedgerDatabase.commitNext(on: app)
            app.close()
            let linked = try Self.agent(directory.file("link/app.db"), directory, "2.log")
            #expect(linked.wait() == 0, "\(linked.log)")
            #expect(!linked.log.contains("new generation"), "\(linked.log)")
            // `..` after a symbolic link leads where the kernel says: `hop/../app.db` with
            // `hop -> data/inner` is data/app.db (folded by hand it would be ./app.db).
            try FileManager.default.createDirectory(
                atPath: directory.file("data/inner"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("hop"), withDestinationPath: directory.file("data/inner"))
            let again = try Connection(path: directory.file("hop/../app.db"))
            try LedgerDatabase.commitNext(on: again)
            again.close()
            let hopped = try Self.agent(directory.file("hop/../app.db"), directory, "3.log")
            #expect(hopped.wait() == 0, "\(hopped.log)")
            #expect(!hopped.log.contains("new generation"), "\(hopped.log)")
            let states = try FileManager.default.contentsOfDirectory(atPath: directory.file("state"))
            #expect(states.count == 1, "\(states)")
            try Self.expectLatest(directory, count: 12)
        }
    }
}
