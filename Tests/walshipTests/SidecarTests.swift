import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    /// Issue 19 (item 1): `replicate --restore-if-missing --exec`.
    @Suite("replicate --exec and --restore-if-missing")
    struct SidecarTests {
        /// A small application: opens (or creates) the database in WAL mode, prints how many rows
        /// it found, inserts `rows` rows, then either exits with `status` or, with `wait`, runs
        /// until SIGTERM, inserts one more row and exits 0.
        static let app = """
            import signal, sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS t(x)")
            print("rows at start", db.execute("SELECT count(*) FROM t").fetchone()[0], flush=True)
            for i in range(int(sys.argv[2])):
                db.execute("INSERT INTO t VALUES (?)", (i,))
            if sys.argv[3] == "wait":
                stopping = []
                signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
                print("waiting", flush=True)
                while not stopping:
                    time.sleep(0.05)
                db.execute("INSERT INTO t VALUES ('last')")
                sys.exit(0)
            sys.exit(int(sys.argv[3]))
            """

        static func arguments(_ directory: TemporaryDirectory, _ app: String) -> [String] {
            [
                "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--restore-if-missing", "--exec",
                "python3 \(directory.file("app.py")) \(directory.file("app.db")) \(app)",
            ]
        }

        static func rows(_ path: String) throws -> Int64 {
            let connection = try Connection(path: path, mode: [.readOnly])
            defer { connection.close() }
            return try connection.scalarInt("SELECT count(*) FROM t") ?? -1
        }

        @Test(
            "the application's exit status is walship's; a database deleted while both were down is restored before the application starts"
        )
        func restoreBeforeTheApplicationStarts() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try Self.app.write(toFile: directory.file("app.py"), atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            // First boot: an empty replica, so the application starts on a fresh database.
            let first = try WalshipBinary.run(Self.arguments(directory, "5 3"))
            #expect(first.status == 3, "\(first.stdout)\(first.stderr)")
            #expect(first.stdout.contains("rows at start 0"), "\(first.stdout)")
            #expect(first.stderr.contains("replica is empty"), "\(first.stderr)")
            // The volume is lost.
            for suffix in ["", "-wal", "-shm"] {
                try? FileManager.default.removeItem(atPath: directory.file("app.db") + suffix)
            }
            let second = try WalshipBinary.run(Self.arguments(directory, "2 0"))
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(second.stdout.contains("rows at start 5"), "\(second.stdout)\(second.stderr)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try Self.rows(directory.file("latest.db")) == 7)
        }

        @Test("SIGTERM to walship reaches the application; its last commit is shipped before walship exits 0")
        func signalsArePassedOn() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try Self.app.write(toFile: directory.file("app.py"), atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let agent = try AgentProcess(Self.arguments(directory, "3 wait"), logPath: directory.file("agent.log"))
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            #expect(agent.log.contains("the application exited"), "\(agent.log.suffix(3000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try Self.rows(directory.file("latest.db")) == 4)
        }

        @Test(
            "/readyz answers 503 until start-up is done (here: the application never creates its database), /healthz 200 throughout"
        )
        func readinessWaitsForStartUp() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let agent = try AgentProcess(
                [
                    "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"), "--http-addr", "127.0.0.1:0", "--exec", "sleep 30",
                ], logPath: directory.file("agent.log"))
            #expect(agent.waitForLog("waiting for the application to create the database"), "\(agent.log)")
            let port = try #require(
                agent.httpPort, "\(agent.log)")
            let ready = try LoopbackHTTP.request(port: port, path: "/readyz")
            #expect(ready.status == 503 && ready.body == "starting\n", "\(ready)")
            #expect(try LoopbackHTTP.request(port: port, path: "/healthz").status == 200)
            // SIGTERM reaches `sleep`, which it ends: walship exits with its status (128 + 15).
            #expect(agent.stop() == 143, "\(agent.log.suffix(2000))")
        }

        @Test(
            "a sidecar started before its application created the database waits for it, then replicates; --once exits 3"
        )
        func sidecarWaitsForTheDatabase() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let once = try WalshipBinary.run([
                "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--once",
            ])
            #expect(once.status == 3, "\(once.stderr)")
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("waiting for the application to create the database"), "\(agent.log)")
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 7)
            #expect(agent.waitForLog("snapshot taken"), "\(agent.log)")
            #expect(agent.stop() == 0, "\(agent.log.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 7)
        }

        @Test(
            "a start that fails after the application started (another agent holds the database) stops the application")
        func failedStartStopsTheApplication() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 10)
            let first = try AgentProcess(
                [
                    "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file("state"),
                ], logPath: directory.file("first.log"))
            defer { _ = first.stop() }
            #expect(first.waitUntilReplicating(), "\(first.log)")
            let second = try WalshipBinary.run([
                "replicate", directory.file("app.db"), ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--http-addr", "127.0.0.1:0", "--exec", "sleep 60",
            ])
            #expect(second.status == 3, "\(second.stderr)")
            let pid = try #require(
                second.stderr.firstMatch(of: /exec.pid=(\d+)/).flatMap { Int32($0.1) }, "\(second.stderr)")
            // The application was stopped and waited for (not left running without its parent).
            #expect(kill(pid, 0) != 0, "the application \(pid) still runs")
        }

        @Test("--exec with --once is a usage error")
        func execWithOnceIsRefused() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let result = try WalshipBinary.run(Self.arguments(directory, "1 0") + ["--once"])
            #expect(result.status == 2, "\(result.stderr)")
        }
    }
}
