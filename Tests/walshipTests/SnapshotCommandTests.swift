import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

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

        @Test(
            "the control socket listens from the agent's start: a snapshot asked while the agent waits for its database exits 3, saying it is starting; once it replicates, the agent takes it"
        )
        func snapshotWhileTheAgentStarts() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let agent = try ReplicateCommandTests.agent(directory)
            defer { _ = agent.stop() }
            #expect(agent.waitForLog("waiting for the application to create the database"), "\(agent.log)")
            // The socket is in the database's own state directory, `state/app.db-<hash>`.
            func socket() -> String? {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.file("state"))) ?? []
                return names.map { directory.file("state/\($0)/control.sock") }
                    .first { FileManager.default.fileExists(atPath: $0) }
            }
            let deadline = Date().addingTimeInterval(30)
            while socket() == nil && Date() < deadline {
                usleep(20_000)  // Polls for the socket, with a deadline.
            }
            let path = try #require(socket(), "no control socket while the agent starts")
            let early = try WalshipBinary.run([
                "snapshot", directory.file("app.db"), "--state-dir", directory.file("state"),
            ])
            #expect(early.status == 3, "\(early.stderr)")
            #expect(early.stderr.contains("still starting"), "\(early.stderr)")
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 7)
            #expect(agent.waitUntilReplicating(), "\(agent.log)")
            let asked = try WalshipBinary.run([
                "snapshot", directory.file("app.db"), "--state-dir", directory.file("state"),
            ])
            #expect(asked.status == 0, "\(asked.stderr)")
            #expect(asked.stdout.contains("by the running agent"), "\(asked.stdout)")
            #expect(try Self.snapshotCount(directory) == 2)
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            #expect(!FileManager.default.fileExists(atPath: path), "the socket is removed when the agent stops")
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
