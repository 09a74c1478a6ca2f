import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 13: an object's key that already holds an object when the agent uploads it. Run
    /// against SeaweedFS, which (unlike rclone) enforces `If-None-Match: *`, behind the fault
    /// proxy, which holds a segment PUT until the agent that sent it was killed and restarted.
    @Suite("objects already in the store")
    struct ObjectConflictTests {
        /// SeaweedFS behind a proxy that answers HEAD with the length of its empty body, a ledger
        /// database, and the environment an agent needs to reach the store through the proxy.
        struct Setup {
            let server: S3TestServer
            let proxy: FaultProxy
            let directory: TemporaryDirectory
            let database: String
            /// The application's connection, open throughout (so its close never checkpoints and
            /// removes the WAL between the two agents).
            let app: Connection

            init() async throws {
                server = try await S3TestServer.start(buckets: ["walship"], kind: .seaweedfs)
                directory = try TemporaryDirectory()
                proxy = try FaultProxy(
                    upstream: server.endpoint, seed: 1, rate: 0, directory: directory, headLengthZero: true)
                database = directory.file("app.db")
                try LedgerDatabase.create(at: database, rows: 20)
                app = try Connection(path: database)
            }

            func stop() {
                app.close()
                proxy.stop()
                server.stop()
                directory.remove()
            }

            var environment: [String: String] {
                [
                    "AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": server.accessKeyID,
                    "AWS_SECRET_ACCESS_KEY": server.secretAccessKey, "AWS_REGION": "us-east-1",
                ]
            }

            func agent(_ log: String) throws -> AgentProcess {
                try AgentProcess(
                    [
                        "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"),
                        "--sync-interval", "100ms", "--log-level", "debug",
                    ], logPath: directory.file(log), environment: environment)
            }

            /// Starts an agent, lets its snapshot land, holds its first segment PUT in the proxy
            /// and kills it; returns the held object's key.
            func agentKilledWithAHeldSegment() throws -> String {
                let first = try agent("first.log")
                #expect(first.waitForLog("snapshot taken"), "\(first.log)")
                try proxy.holdNextPut(containing: ".segment")
                for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
                let held = try #require(proxy.waitUntilHeld(), "no segment PUT reached the proxy: \(first.log)")
                first.killHard()
                // "/walship/db/generations/...": path-style, bucket first.
                return String(held.split(separator: "?")[0].dropFirst("/walship/".count))
            }

            /// Restores the latest point and expects it to hold every transaction the database has.
            func expectLatestRestoresDatabase() throws {
                let restored = try WalshipBinary.run(
                    ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"],
                    environment: environment)
                #expect(restored.status == 0, "\(restored.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db"))
                        == LedgerDatabase.verifiedTransactionCount(at: database))
            }
        }

        @Test(
            "a segment PUT that lands after its agent was killed is recognised as the agent's own, whatever HEAD says (found by a chaos run against SeaweedFS)"
        )
        func heldPutLandsAfterRestart() async throws {
            let setup = try await Setup()
            defer { setup.stop() }
            let key = try setup.agentKilledWithAHeldSegment()
            // The killed agent's request lands; the restarted agent's own PUT then finds the key taken.
            #expect(setup.proxy.release() == 200)
            let second = try setup.agent("second.log")
            #expect(
                second.waitForLog("object was already in the store"),
                "the restarted agent did not recognise its own object '\(key)': \(second.log.suffix(3000))")
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: setup.app) }
            #expect(second.stop() == 0, "\(second.log.suffix(3000))")
            #expect(!second.log.contains("new generation"), "\(second.log.suffix(3000))")
            try setup.expectLatestRestoresDatabase()
        }

        @Test(
            "a key that holds another object is never overwritten: the agent ends the generation, starts a new one and keeps replicating"
        )
        func keyHoldsAnotherObject() async throws {
            let setup = try await Setup()
            defer { setup.stop() }
            let key = try setup.agentKilledWithAHeldSegment()
            setup.proxy.discard()
            // Something else lands under the key first.
            let store = try setup.server.makeStore(bucket: "walship")
            try await store.put(key, body: .bytes(Array("not this agent's segment".utf8)))
            let second = try setup.agent("second.log")
            #expect(
                second.waitForLog("new generation"), "the agent did not end the generation: \(second.log.suffix(3000))"
            )
            #expect(second.log.contains("object key already holds another object"))
            #expect(second.log.contains(key))
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: setup.app) }
            #expect(second.waitForLog("snapshot taken"), "\(second.log)")
            #expect(second.stop() == 0, "the agent could not ship everything: \(second.log.suffix(3000))")
            // The other object is still there, untouched.
            #expect(try await store.get(key) == Array("not this agent's segment".utf8))
            try setup.expectLatestRestoresDatabase()
        }

        @Test(
            "a multipart upload left incomplete by a kill -9 during a snapshot is aborted at the next start, and only that one (issue 14)"
        )
        func incompleteUploadIsAborted() async throws {
            let setup = try await Setup()
            defer { setup.stop() }
            // About 20 MB of incompressible rows: the snapshot goes up in two 16 MiB parts.
            try LedgerDatabase.create(at: setup.database, rows: 20_000, payloadBytes: 1000)
            // Someone else's upload under the same prefix, which walship must leave alone.
            let boto = """
                import boto3, sys
                c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                                 aws_secret_access_key=sys.argv[3], region_name="us-east-1")
                if sys.argv[4] == "create":
                    c.create_multipart_upload(Bucket="walship", Key="db/not-walship.bin")
                else:
                    print(sorted(u["Key"] for u in c.list_multipart_uploads(Bucket="walship").get("Uploads", [])))
                """
            try boto.write(toFile: setup.directory.file("uploads.py"), atomically: true, encoding: .utf8)
            func uploads(_ action: String) throws -> String {
                try CommandRunner.run(
                    CommandRunner.which("python3") ?? "/usr/bin/python3",
                    [
                        setup.directory.file("uploads.py"), setup.server.endpoint, setup.server.accessKeyID,
                        setup.server.secretAccessKey, action,
                    ]
                ).stdout
            }
            _ = try uploads("create")
            try setup.proxy.holdNextPut(containing: "partNumber=2")
            let first = try setup.agent("first.log")
            #expect(setup.proxy.waitUntilHeld(timeout: 60) != nil, "\(first.log)")
            first.killHard()
            setup.proxy.discard()
            let listed = try uploads("list")
            #expect(listed.contains(".snapshot"), "the killed agent's upload is incomplete: \(listed)")
            let second = try setup.agent("second.log")
            #expect(second.waitForLog("aborted a multipart upload"), "\(second.log.suffix(3000))")
            #expect(second.stop() == 0, "\(second.log.suffix(3000))")
            let after = try uploads("list")
            #expect(!after.contains(".snapshot"), "\(after)")
            #expect(after.contains("db/not-walship.bin"), "another upload was aborted: \(after)")
        }
    }
}
