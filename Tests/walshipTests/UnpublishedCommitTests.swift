import Foundation
import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    @Suite("walship replicate and a writer killed in COMMIT")
    struct UnpublishedCommitTests {
        static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Scripts/unpublished_commit.py").path

        /// Runs `unpublished_commit.py` under strace with its WAL sync held, and kills it once its
        /// frames (a ledger transaction with a `payloadBytes` payload) are in the `-wal` file: a
        /// commit written but never published in the wal-index.
        static func killInCommit(_ database: String, payloadBytes: Int) throws {
            let strace = try #require(CommandRunner.which("strace"), "strace is missing: run scripts/setup")
            let python = try #require(
                try CommandRunner.run("/bin/sh", ["-c", "python3 -c 'import sys; print(sys.executable)'"]).stdout
                    .split(separator: "\n").first.map(String.init))
            let victim = Process()
            victim.executableURL = URL(fileURLWithPath: strace)
            victim.arguments = [
                "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e",
                "inject=fsync,fdatasync:delay_enter=30s", python, script, database, String(payloadBytes),
            ]
            let pipe = Pipe()
            victim.standardOutput = pipe
            try victim.run()
            var line = Data()
            while !line.contains(0x0A) {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            #expect(String(decoding: line, as: UTF8.self).hasPrefix("written"))
            _ = try CommandRunner.run("/usr/bin/pkill", ["-9", "-f", script])
            victim.waitUntilExit()
        }

        /// A ledger database of 20 rows replicated by a running agent, after a writer's commits of
        /// 0.2 s were shipped (the WAL holds frames).
        static func agentAfterCommits(_ directory: TemporaryDirectory) throws -> (String, AgentProcess) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 20)
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            _ = try WriterProcess(script: WALBoundTests.writerScript, database: database, seconds: 0.2).wait()
            #expect(agent.waitForLog("object uploaded", after: "snapshot taken"), "\(agent.log)")
            return (database, agent)
        }

        /// Rows with the victim's payload size in `path`.
        static func victimRows(_ path: String, payloadBytes: Int) throws -> Int64? {
            let connection = try Connection(path: path, mode: [.readOnly])
            defer { connection.close() }
            return try connection.scalarInt("SELECT count(*) FROM ledger WHERE length(payload) = \(payloadBytes)")
        }

        @Test(
            "a commit SQLite's recovery publishes after the agent stopped (a writer killed in COMMIT, then the agent stopped) ships at the next start in the same generation, with the WAL kept or removed",
            arguments: [true, false])
        func recoveredCommitShipsAtNextStart(walKept: Bool) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (database, agent) = try Self.agentAfterCommits(directory)
            // The demo's order: the writer dies inside COMMIT, then the agent stops. The agent
            // never saw the commit: it was not published while it ran.
            try Self.killInCommit(database, payloadBytes: 7777)
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            // The application's next connection is the first one: SQLite's recovery rebuilds the
            // wal-index from the WAL and publishes the killed writer's complete commit.
            let app = try Connection(path: database)
            #expect(try app.scalarInt("SELECT count(*) FROM ledger WHERE length(payload) = 7777") == 1)
            let expected = try LedgerDatabase.verifiedTransactionCount(at: database)
            // Kept: the WAL still holds it (catch-up). Removed: the last connection checkpointed
            // and deleted the WAL (continuity by content).
            if !walKept { app.close() }
            defer { if walKept { app.close() } }
            let next = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(next.wait() == 0, "\(next.log.suffix(2000))")
            #expect(!next.log.contains("new generation"), "\(next.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == expected)
            #expect(try Self.victimRows(directory.file("latest.db"), payloadBytes: 7777) == 1)
        }

        @Test("a commit frame written but never published is not shipped, and later commits are not lost")
        func unpublishedCommitIsNotShipped() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // A few published commits so the WAL has frames and the victim's first sync is its commit's.
            let (database, agent) = try Self.agentAfterCommits(directory)

            // The victim writes its frames, then hangs in the WAL sync; it is killed there.
            try Self.killInCommit(database, payloadBytes: 9000)
            // Kept: an unpublished frame the agent reads and skips leaves no event to wait for; this
            // gives it several polls (200 ms) over the WAL that ends in that frame.
            try await Task.sleep(for: .seconds(1))
            #expect(!agent.log.contains("panic"))

            // Later commits overwrite the unpublished frames under the same salts.
            let after = try WriterProcess(script: WALBoundTests.writerScript, database: database, seconds: 0.5).wait()
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")

            let replica = Replica(
                store: try FileObjectStore(root: directory.file("replica")), layout: ReplicaLayout(prefix: ""))
            let audit = try await ReplicaAudit.run(replica: replica)
            #expect(audit.problems.isEmpty, "\(audit.problems)")
            let expected = try LedgerDatabase.verifiedTransactionCount(at: database)
            // Every restorable state is a real one: the ledger invariant holds at each txid, and the
            // counter never repeats (a shipped phantom would repeat the next writer's counter).
            var counts: [Int64] = []
            for transaction in audit.transactions.suffix(after + 2) {
                let name = "at-\(transaction.txid).db"
                let output = try ReplicateCommandTests.restore(
                    directory, ["--txid", String(transaction.txid)], to: name)
                #expect(output.status == 0, "\(output.stderr)")
                counts.append(try LedgerDatabase.verifiedTransactionCount(at: directory.file(name)))
            }
            #expect(counts == counts.sorted() && Set(counts).count == counts.count, "\(counts)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0)
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == expected)
            // No restored state holds the victim's 9000-byte payload.
            #expect(try Self.victimRows(directory.file("latest.db"), payloadBytes: 9000) == 0)
        }
    }
}
