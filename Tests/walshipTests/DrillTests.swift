import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 14 (found by review): a disaster-drill copy restored elsewhere and replicated back to
    /// the production replica while production's agent was down.
    @Suite("a drill replicated back while production's agent is down")
    struct DrillTests {
        @Test(
            "production's next generation links to its own, the latest point and times skip the drill's copy (said so), and --generation and --txid still restore it"
        )
        func drillWhileProductionIsDown() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let replica = ReplicateCommandTests.replicaURL(directory)
            let production = directory.file("app.db")
            try LedgerDatabase.create(at: production, rows: 5)
            func agent(_ database: String, state: String, log: String) throws -> AgentProcess {
                try AgentProcess(
                    ["replicate", database, replica, "--state-dir", directory.file(state), "--sync-interval", "100ms"],
                    logPath: directory.file(log))
            }
            // Production: txids 1...3, then its agent stops.
            let app = try Connection(path: production)
            defer { app.close() }
            var prod = try agent(production, state: "prod-state", log: "prod.log")
            #expect(prod.waitForLog("snapshot taken"), "\(prod.log)")
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try await Task.sleep(for: .seconds(1))
            #expect(prod.stop() == 0)
            let productionAtStop = try ContentHash.of(connection: app)

            // The drill: restored on "another host" and replicated back, with commits of its own.
            let drill = directory.file("drill.db")
            let restored = try WalshipBinary.run([
                "restore", replica, "-o", drill, "--quiet", "--state-dir", directory.file("drill-state"),
            ])
            #expect(restored.status == 0, "\(restored.stderr)")
            let drillAgent = try agent(drill, state: "drill-state", log: "drill.log")
            #expect(drillAgent.waitForLog("snapshot taken"), "\(drillAgent.log)")
            let drillApp = try Connection(path: drill)
            for _ in 0..<2 { try LedgerDatabase.commitNext(on: drillApp) }
            let drillHash = try ContentHash.of(connection: drillApp)
            drillApp.close()
            try await Task.sleep(for: .seconds(1))
            #expect(drillAgent.stop() == 0, "\(drillAgent.log)")
            let duringDrill = Timestamp.format(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
            try await Task.sleep(for: .milliseconds(300))

            // Production's agent comes back; production commits once more.
            prod = try agent(production, state: "prod-state", log: "prod2.log")
            #expect(prod.waitForLog("snapshot taken"), "\(prod.log)")
            #expect(prod.log.contains("descend from a copy of this database restored elsewhere"), "\(prod.log)")
            try LedgerDatabase.commitNext(on: app)
            try await Task.sleep(for: .seconds(1))
            #expect(prod.stop() == 0)
            let productionFinal = try ContentHash.of(connection: app)

            let list = try WalshipBinary.run(["list", replica, "--json"])
            let listing = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])
            let branches = try #require(listing["side_branches"] as? [String], "\(listing)")
            #expect(branches.count == 1, "\(listing)")
            #expect((listing["forks"] as? [Any])?.isEmpty == true, "\(listing)")
            let drillGeneration = try #require(branches.first)

            func restore(_ extra: [String], _ name: String) throws -> (CommandRunner.Output, String?) {
                let output = directory.file(name)
                let run = try WalshipBinary.run(["restore", replica, "-o", output, "--quiet"] + extra)
                return (run, run.status == 0 ? try ContentHash.of(path: output) : nil)
            }
            // The latest point is production's.
            let (latest, latestHash) = try restore([], "latest.db")
            #expect(latest.status == 0 && latestHash == productionFinal, "\(latest.stderr)")
            // A time after the drill's commits: production had not shipped anything newer than its
            // stop, so it is a gap (production's agent was down), not the drill's data.
            let (atDrill, _) = try restore(["--at", duringDrill], "at.db")
            #expect(atDrill.status == 7, "\(atDrill.stderr)")
            #expect(atDrill.stderr.contains("--generation \(drillGeneration)"), "\(atDrill.stderr)")
            let (nearest, nearestHash) = try restore(["--at", duringDrill, "--nearest-before"], "nearest.db")
            #expect(nearest.status == 0 && nearestHash == productionAtStop, "\(nearest.stderr)")
            // The drill's points are still there for whoever asks for them.
            let (byGeneration, byGenerationHash) = try restore(["--generation", drillGeneration], "drill-latest.db")
            #expect(byGeneration.status == 0 && byGenerationHash == drillHash, "\(byGeneration.stderr)")
            let verify = try WalshipBinary.run(["verify", replica])
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        }
    }
}
