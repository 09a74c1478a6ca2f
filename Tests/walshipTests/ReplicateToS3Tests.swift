import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    @Suite("walship replicate to S3")
    struct ReplicateToS3Tests {
        @Test(
            "--config replicates two databases to a loopback S3 server and a directory; restore and list find them by name"
        )
        func configWithTwoDatabases() async throws {
            let server = try await S3TestServer.start(buckets: ["backups"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 30)
            try LedgerDatabase.create(at: directory.file("jobs.db"), rows: 10)
            let config = """
                state-dir: \(directory.file("state"))
                buckets:
                  s3:
                    url: s3://backups/prod
                    endpoint: ${TEST_S3_ENDPOINT}
                    access-key-id: ${TEST_S3_KEY}
                    secret-access-key: ${TEST_S3_SECRET}
                  dir:
                    url: file://\(directory.file("replica"))
                databases:
                  - path: \(directory.file("app.db"))
                    buckets: [s3]
                  - path: \(directory.file("jobs.db"))
                    buckets: [dir]
                    prefix: batch
                """
            try config.write(toFile: directory.file("walship.yml"), atomically: true, encoding: .utf8)
            let environment = [
                "TEST_S3_ENDPOINT": server.endpoint, "TEST_S3_KEY": server.accessKeyID,
                "TEST_S3_SECRET": server.secretAccessKey,
            ]
            let once = try WalshipBinary.run(
                ["replicate", "--config", directory.file("walship.yml"), "--once"], environment: environment)
            #expect(once.status == 0, "\(once.stderr)")
            // Objects landed under bucket prefix + database prefix.
            #expect(FileManager.default.fileExists(atPath: server.dataRoot + "/backups/prod/app/generations"))
            #expect(FileManager.default.fileExists(atPath: directory.file("replica/batch/generations")))

            for (name, rows) in [("app", Int64(30)), (directory.file("jobs.db"), 10)] {
                let output = try WalshipBinary.run(
                    [
                        "restore", name, "--config", directory.file("walship.yml"), "-o", directory.file("\(rows).db"),
                        "--quiet",
                    ],
                    environment: environment)
                #expect(output.status == 0, "\(output.stderr)")
                #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(rows).db")) == rows)
            }
            let list = try WalshipBinary.run(
                ["list", "app", "--config", directory.file("walship.yml"), "--json"], environment: environment)
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("\"restore_window\""))
        }

        @Test(
            "a stop while the store hangs ends within 2 x shutdown-timeout + 5 s (exit 4, the rest kept in the spool; a snapshot asked meanwhile exits 3), or at once on a second signal (130); the next start ships it",
            arguments: [false, true]
        )
        func stopWhileStoreHangs(secondSignal: Bool) async throws {
            let server = try await S3TestServer.start(buckets: ["walship"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 50)
            let environment = server.environment
            let arguments = [
                "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"), "--sync-interval",
                "200ms", "--shutdown-timeout", "2s", "--http-addr", "127.0.0.1:0",
            ]
            let agent = try AgentProcess(arguments, logPath: directory.file("agent.log"), environment: environment)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let port = try #require(agent.httpPort, "\(agent.log)")
            try await agent.waitUntilShipped(txid: try agent.txidAfterSnapshot(0), httpPort: port)
            server.freeze()
            let connection = try Connection(path: database)
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: connection) }
            connection.close()
            // The stop reads those commits and tries to upload them into a store that never answers.
            let started = ContinuousClock.now
            let status: Int32
            if secondSignal {
                kill(agent.pid, SIGTERM)
                #expect(agent.waitForLog("stopping: shipping what is committed"), "\(agent.log.suffix(3000))")
                kill(agent.pid, SIGTERM)
                status = agent.wait(timeout: 120)
            } else {
                kill(agent.pid, SIGTERM)
                #expect(agent.waitForLog("stopping: shipping what is committed"), "\(agent.log.suffix(3000))")
                // A snapshot asked of the stopping agent is refused at once (exit 3), not taken.
                let asked = try WalshipBinary.run(
                    ["snapshot", database, "--state-dir", directory.file("state")], environment: environment)
                #expect(asked.status == 3, "\(asked.stderr)")
                #expect(asked.stderr.contains("the agent is stopping"), "\(asked.stderr)")
                status = agent.wait(timeout: 120)
            }
            let took = ContinuousClock.now - started
            server.thaw()
            if secondSignal {
                // The second signal exits at once, whatever the stop was waiting for.
                #expect(status == 130, "\(agent.log.suffix(3000))")
                #expect(took < .seconds(10), "the stop took \(took)")
            } else {
                // The bound is 2 x 2 s + 5 s = 9 s; a request to a hanging store alone lasts minutes.
                #expect(status == 4, "\(agent.log.suffix(3000))")
                #expect(took < .seconds(45), "the stop took \(took)")
                #expect(agent.log.contains("abandoning the requests in flight"), "\(agent.log.suffix(3000))")
            }
            let once = try WalshipBinary.run(arguments + ["--once"], environment: environment)
            #expect(once.status == 0, "\(once.stderr)")
            let output = try WalshipBinary.run(
                ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"], environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 70)
        }

        @Test("replication to S3 under a writer, stopped and restarted, restores the app's final state")
        func replicateToS3() async throws {
            let server = try await S3TestServer.start(buckets: ["walship"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 100)
            let environment = server.environment
            let arguments = [
                "replicate", database, "s3://walship/db", "--state-dir", directory.file("state"), "--sync-interval",
                "200ms",
            ]
            var agent = try AgentProcess(arguments, logPath: directory.file("agent.log"), environment: environment)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            let writer = try WriterProcess(
                script: WALBoundTests.writerScript, database: database, intervalMilliseconds: 10, payloadBytes: 1000)
            // Workload pacing: the writer writes 2 s under each agent and 0.3 s while none runs.
            try await Task.sleep(for: .seconds(2))
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            try await Task.sleep(for: .milliseconds(300))
            agent = try AgentProcess(arguments, logPath: directory.file("agent.log"), environment: environment)
            #expect(agent.waitUntilReplicating(), "\(agent.log.suffix(3000))")
            try await Task.sleep(for: .seconds(2))
            let commits = try writer.stop()
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let output = try WalshipBinary.run(
                ["restore", "s3://walship/db", "-o", directory.file("latest.db"), "--quiet"], environment: environment)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(
                try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == Int64(100 + commits))
        }
    }
}
