import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

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
            try await agent.waitUntilShipped(
                commitsAfterSnapshot: 3, replicaDirectory: directory.file("a"), prefix: "app/")
            try FileManager.default.removeItem(atPath: directory.file("a"))
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("a"), withDestinationPath: directory.file("not-a-directory"))
            for _ in 0..<4 { try LedgerDatabase.commitNext(on: app) }
            #expect(agent.waitForLog("upload failed; the object stays in the spool"), "\(agent.log.suffix(2000))")
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
