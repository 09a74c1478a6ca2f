import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 15: database checksums per restore point, continuity by content, restores that prove
    /// themselves.
    @Suite("content checksums")
    struct ContentChecksumTests {
        static func agent(_ directory: TemporaryDirectory, _ extra: [String] = []) throws -> AgentProcess {
            try ReplicateCommandTests.agent(directory, extra: extra)
        }

        static func list(_ directory: TemporaryDirectory) throws -> [String: Any] {
            let output = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            return try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        }

        static func generations(_ directory: TemporaryDirectory) throws -> [[String: Any]] {
            try #require(try list(directory)["generations"] as? [[String: Any]])
        }

        /// Restores every txid of the only generation and checks each holds `base + txid` commits
        /// and passed its checksum check.
        static func everyPointRestoresExactly(_ directory: TemporaryDirectory, base: Int64) throws {
            let generation = try #require(try generations(directory).first)
            let first = try #require(generation["first_txid"] as? Int)
            let last = try #require(generation["last_txid"] as? Int)
            for txid in first...last {
                let restored = try ReplicateCommandTests.restore(directory, ["--txid", String(txid)], to: "\(txid).db")
                #expect(restored.status == 0, "txid \(txid): \(restored.stderr)")
                #expect(!restored.stderr.contains("without the database checksum"), "txid \(txid): \(restored.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(txid).db")) == base + Int64(txid))
            }
        }

        /// An agent and an application replicate `commits`; then both stop, the application last,
        /// so its close checkpoints and removes the WAL.
        static func replicateThenStopBoth(_ directory: TemporaryDirectory, commits: Int) async throws {
            let app = try Connection(path: directory.file("app.db"))
            let agent = try Self.agent(directory)
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            for _ in 0..<commits { try LedgerDatabase.commitNext(on: app) }
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            app.close()
            #expect(!FileSystem.exists(directory.file("app.db-wal")))
        }

        @Test(
            "the application and the agent stop together (the WAL goes) and start again: the generation goes on with no new snapshot, and every point restores exactly"
        )
        func restartWithoutWALContinues() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            try await Self.replicateThenStopBoth(directory, commits: 5)
            let app = try Connection(path: directory.file("app.db"))
            let agent = try Self.agent(directory)
            #expect(agent.waitForLog("continuing generation"), "\(agent.log)")
            #expect(agent.log.contains("exactly the last shipped state"), "\(agent.log)")
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            app.close()
            #expect(!agent.log.contains("new generation"), "\(agent.log)")
            #expect(!agent.log.contains("snapshot taken"), "\(agent.log)")
            let generations = try Self.generations(directory)
            #expect(generations.count == 1)
            #expect((generations.first?["snapshots"] as? [Any])?.count == 1)
            try Self.everyPointRestoresExactly(directory, base: 10)
        }

        @Test(
            "a page of the database file broken while both were down (no longer a sound database) starts a new generation"
        )
        func pageChangedWhileDownStartsNewGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 200)
            try await Self.replicateThenStopBoth(directory, commits: 3)
            // Page 3 (a b-tree page of the ledger) overwritten behind SQLite.
            let file = try LocalFile(path: directory.file("app.db"), flags: O_RDWR)
            try [UInt8](repeating: 0xA5, count: 4096).withUnsafeBytes { try file.write($0, at: 2 * 4096) }
            try file.close()
            let agent = try Self.agent(directory, ["--once"])
            #expect(agent.wait() == 0, "\(agent.log)")
            #expect(agent.log.contains("new generation"), "\(agent.log)")
            #expect(agent.log.contains("quick_check"), "\(agent.log)")
            #expect(try Self.generations(directory).count == 2)
        }

        @Test("a database restored from the replica and replicated again starts a new generation")
        func restoredDatabaseStartsNewGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            try await Self.replicateThenStopBoth(directory, commits: 4)
            let restored = try WalshipBinary.run([
                "restore", ReplicateCommandTests.replicaURL(directory), "-o", directory.file("app.db"), "--force",
                "--txid", "2",
            ])
            #expect(restored.status == 0, "\(restored.stderr)")
            let agent = try Self.agent(directory, ["--once"])
            #expect(agent.wait() == 0, "\(agent.log)")
            #expect(agent.log.contains("new generation"), "\(agent.log)")
            #expect(!agent.log.contains("continuing generation"), "\(agent.log)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 12)
        }

        @Test("30 runs of replicate --once with the sqlite3 CLI committing between them make one generation")
        func cronRunsMakeOneGeneration() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 0)
            let sqlite3 = try #require(CommandRunner.which("sqlite3"), "sqlite3 is missing: run scripts/setup")
            for run in 0..<30 {
                let once = try Self.agent(directory, ["--once"])
                #expect(once.wait() == 0, "run \(run): \(once.log)")
                let commit = try CommandRunner.run(
                    sqlite3,
                    [
                        directory.file("app.db"),
                        "BEGIN; INSERT INTO ledger(id, payload) SELECT n + 1, randomblob(500) FROM counter; UPDATE counter SET n = n + 1; COMMIT;",
                    ])
                #expect(commit.status == 0, "\(commit.stderr)")
            }
            #expect(try Self.agent(directory, ["--once"]).wait() == 0)
            let generations = try Self.generations(directory)
            #expect(generations.count == 1, "\(generations)")
            #expect((generations.first?["snapshots"] as? [Any])?.count == 1)
            try Self.everyPointRestoresExactly(directory, base: 0)
        }

        @Test(
            "a segment holding a valid but wrong page image (its own checksums correct, integrity_check passes) makes restore exit 10 with no output"
        )
        func wrongPageImageFailsTheChecksum() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10, payloadBytes: 2000)
            try await Self.replicateThenStopBoth(directory, commits: 3)
            let store = try FileObjectStore(root: directory.file("replica"))
            let inventory = try await ReplicaInventory.load(store: store, layout: ReplicaLayout(prefix: ""))
            let segment = try #require(inventory.segments.last)
            let path = directory.file("replica/\(segment.key)")
            // Rewrite the segment with one byte of a row's payload changed: a different but valid
            // database, in an object whose header, SHA-256 and chain links are all correct.
            var payload: [UInt8] = []
            let header = try ObjectFile.read(path: path, key: segment.key) { _, bytes in payload += bytes }
            let pageSize = Int(header.pageSize)
            let indexBytes = 4 + Int(header.lastTxid - header.firstTxid + 1) * 48
            // The last frame of a b-tree page of the tables (page 3 or later; the last, so no later
            // image of the page replaces it): 100 bytes before its end lies inside the oldest
            // cell's blob, or in free space.
            var chosen: Int?
            var frame = indexBytes
            while frame + 4 + pageSize <= payload.count {
                let number = payload[frame..<(frame + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                if number >= 3 { chosen = frame }
                frame += 4 + pageSize
            }
            let target = try #require(chosen, "no table page in the segment")
            payload[target + 4 + pageSize - 100] ^= 0x55
            let rewritten = directory.file("rewritten.segment")
            var template = header
            template.uncompressedSize = 0
            template.payloadSize = 0
            _ = try ObjectFile.write(to: rewritten, header: template) { emit in
                try payload.withUnsafeBytes { try emit($0) }
            }
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: rewritten, toPath: path)
            let audit = try await ReplicaAudit.run(replica: Replica(store: store, layout: ReplicaLayout(prefix: "")))
            #expect(audit.problems.isEmpty, "the object itself is intact: \(audit.problems)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 10, "\(latest.stderr)")
            #expect(latest.stderr.contains("does not match the checksum"), "\(latest.stderr)")
            #expect(!FileSystem.exists(directory.file("latest.db")))
            let before = try ReplicateCommandTests.restore(
                directory, ["--txid", String(segment.firstTxid - 1)], to: "before.db")
            #expect(before.status == 0, "\(before.stderr)")
        }

        @Test(
            "a replica written by walship 0.1 (format version 1) restores at every txid, without the checksum check, saying so"
        )
        func versionOneReplicaRestores() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("Fixtures/replica-v1").path
            _ = try CommandRunner.run("/bin/cp", ["-a", fixture, directory.file("replica")])
            for txid in 0...13 {
                let restored = try ReplicateCommandTests.restore(directory, ["--txid", String(txid)], to: "\(txid).db")
                #expect(restored.status == 0, "txid \(txid): \(restored.stderr)")
                #expect(restored.stderr.contains("restored without the database checksum check"), "\(restored.stderr)")
                #expect(
                    try LedgerDatabase.verifiedTransactionCount(at: directory.file("\(txid).db")) == 5 + Int64(txid))
            }
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory)])
            #expect(list.status == 0, "\(list.stderr)")
        }
    }
}
