import ArgumentParser
import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The differential point-in-time torture test (issue 7). A seeded application workload runs
/// against a WAL-mode database from several connections while `walship replicate` ships it
/// through a fault-injecting proxy to `rclone serve s3`; the agent is killed, stopped and
/// restarted, application processes are killed inside COMMIT, and afterwards restores by txid and
/// by time are compared with the oracle the workload recorded after every commit.
///
/// Faults and kills are scheduled by operation count from the seed, so `--seed S --ops N
/// --period P` replays a run's schedule (the agent's timing still varies).
@main
struct Torture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walship-torture", abstract: "Differential point-in-time torture test of walship.")

    @Option(help: "Seed of the workload, chaos and fault schedule.")
    var seed: UInt64 = 1

    @Option(help: "Operations to run (default 3000 unless --minutes is given).")
    var ops: Int?

    @Option(help: "Run for this many minutes instead of a fixed number of operations.")
    var minutes: Double?

    @Option(
        help:
            "Operations per period of scheduled events (default: --ops when given alone, else 4000; a replay passes the failed run's)."
    )
    var period: Int?

    @Option(help: "Replica store: s3 (rclone behind the fault proxy) or file.")
    var store: String = "s3"

    @Option(
        name: .customLong("server"),
        help: "S3 server behind the proxy: rclone, or seaweedfs (which enforces If-None-Match).")
    var serverKind: String = "rclone"

    @Option(help: "Share of S3 requests the proxy breaks.")
    var faultRate: Double = 0.15

    @Flag(help: "Keep the work directory even when the run passes.")
    var keep = false

    func validate() throws {
        guard store == "s3" || store == "file" else { throw ValidationError("--store must be s3 or file") }
        guard S3TestServer.Kind(rawValue: serverKind) != nil else {
            throw ValidationError("--server must be rclone or seaweedfs")
        }
    }

    /// Where the agent replicates to, and the environments of the agent (through the fault
    /// proxy) and of the checks (straight to the server).
    struct Store {
        var replicaURL: String
        var agentEnvironment: [String: String] = [:]
        var checkEnvironment: [String: String] = [:]
        var server: S3TestServer?
        var proxy: FaultProxy?

        func stop() {
            proxy?.stop()
            server?.stop()
        }
    }

    private func startStore(in directory: TemporaryDirectory) async throws -> Store {
        guard store == "s3" else { return Store(replicaURL: "file://\(directory.file("replica"))") }
        let server = try await S3TestServer.start(buckets: ["torture"], kind: S3TestServer.Kind(rawValue: serverKind)!)
        let proxy = try FaultProxy(upstream: server.endpoint, seed: seed, rate: faultRate, directory: directory)
        let credentials = [
            "AWS_ACCESS_KEY_ID": server.accessKeyID, "AWS_SECRET_ACCESS_KEY": server.secretAccessKey,
            "AWS_REGION": "us-east-1",
        ]
        return Store(
            replicaURL: "s3://torture/app",
            agentEnvironment: credentials.merging(["AWS_ENDPOINT_URL": proxy.endpoint]) { $1 },
            checkEnvironment: credentials.merging(["AWS_ENDPOINT_URL": server.endpoint]) { $1 }, server: server,
            proxy: proxy)
    }

    func run() async throws {
        let directory = try TemporaryDirectory(prefix: "walship-torture")
        let store = try await startStore(in: directory)
        defer { store.stop() }
        let database = directory.file("app.db")
        let workload = try Workload(path: database, connections: 3)
        let clock = self.store == "file" ? try WallClockShift(directory: directory) : nil
        let agent = AgentController(
            arguments: [
                "replicate", database, store.replicaURL, "--state-dir", directory.file("state"), "--sync-interval",
                "200ms", "--snapshot-interval", "15s", "--wal-max-frames", "300", "--verify-interval", "5s",
                "--log-level",
                ProcessInfo.processInfo.environment["TORTURE_AGENT_LOG_LEVEL"] ?? "info",
            ], environment: store.agentEnvironment.merging(clock?.environment ?? [:]) { $1 },
            logPath: directory.file("agent.log"))
        // As root, the state directory gets a file system of its own that the run can fill.
        let spoolDisk = getuid() == 0 ? try? SmallFileSystem(path: directory.file("state"), size: "256m") : nil
        try FileManager.default.createSymbolicLink(atPath: directory.file("link"), withDestinationPath: directory.path)
        try FileManager.default.createDirectory(atPath: directory.file("sub"), withIntermediateDirectories: false)
        agent.databasePaths = [database, directory.file("link/app.db"), directory.file("sub/../app.db")]
        try agent.start()

        let run = TortureRun(
            directory: directory, workload: workload, agent: agent,
            period: max(400, period ?? (minutes == nil ? ops : nil) ?? 4000), clock: clock, spoolDisk: spoolDisk,
            replicaURL: store.replicaURL, checkEnvironment: store.checkEnvironment, proxy: store.proxy, seed: seed)
        let deadline = minutes.map { Date().addingTimeInterval($0 * 60) }
        let limit = ops ?? (minutes == nil ? 3000 : Int.max)
        var op = 0
        say("walship-torture: seed \(seed), work directory \(directory.path)")
        while op < limit, deadline.map({ Date() < $0 }) ?? true {
            op += 1
            try await run.step(op)
        }
        try run.finish { store.proxy?.setFaults(false) }

        var checker = Checker(
            oracle: workload.oracle, stops: agent.stops + run.pauses.stops, starts: agent.starts + run.pauses.starts,
            replicaURL: store.replicaURL, environment: store.checkEnvironment, directory: directory, seed: seed,
            forkEvent: run.forkEvent, excused: run.excused)
        try await checker.run()
        workload.close()
        try workload.writeOracle(to: directory.file("oracle.tsv"))
        let failures = run.problems + checker.failures
        if let spoolDisk {
            if !failures.isEmpty {
                _ = try? CommandRunner.run("/bin/cp", ["-a", spoolDisk.path, directory.file("state-kept")])
            }
            spoolDisk.unmount()
        }
        report(run: run, operations: op, checker: checker, proxy: store.proxy, failures: failures)
        if failures.isEmpty {
            say("\npassed")
            if !keep { directory.remove() }
        } else {
            say("\nFAILED (\(failures.count)):")
            for failure in failures.prefix(40) { say("  - \(failure)") }
            await Self.copyReplica(url: store.replicaURL, environment: store.checkEnvironment, to: directory)
            say(
                "replay: scripts/torture --seed \(seed) --ops \(op) --period \(run.period) --store \(self.store) --server \(serverKind)"
            )
            say("work directory kept: \(directory.path)")
            throw ExitCode(1)
        }
    }

    /// After a failure, copies every object of the replica into `<directory>/replica-copy` (a
    /// `file://` replica of its own), so that restores can be replayed once the S3 server is gone.
    private static func copyReplica(url: String, environment: [String: String], to directory: TemporaryDirectory) async
    {
        do {
            let replica = try ReplicaFactoryForChecks.replica(url: url, environment: environment)
            let copy = try FileObjectStore(root: directory.file("replica-copy"), create: true)
            let prefix = replica.layout.prefix
            for object in try await replica.store.list(prefix: prefix) {
                let body = try await replica.store.get(object.key)
                try await copy.put(String(object.key.dropFirst(prefix.count)), body: .bytes(body))
            }
            say("replica copied: file://\(directory.file("replica-copy"))")
        } catch {
            say("the replica could not be copied: \(error)")
        }
    }

    /// How the agent's starts went, from its logs: each new generation by reason, and each
    /// continuation by content (and how many of those read pages from WAL frames the file lacked).
    private static func startDecisions(in directory: TemporaryDirectory) -> [String: Int] {
        var counts: [String: Int] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix("agent") && name.contains(".log") {
            let log = (try? String(contentsOfFile: directory.file(name), encoding: .utf8)) ?? ""
            for line in log.split(separator: "\n") {
                if line.contains(" new generation "), let reason = line.range(of: "generation.reason=\"") {
                    let rest = line[reason.upperBound...]
                    counts["new generation: \(rest.prefix { $0 != "\"" })", default: 0] += 1
                } else if line.contains("continuing generation: "), let pages = line.range(of: "db.pages_from_wal=") {
                    let how =
                        line.contains("exactly the last shipped state") ? "unchanged" : "changes as one transaction"
                    counts["start continued by content (\(how))", default: 0] += 1
                    if line[pages.upperBound...].prefix(while: \.isNumber) != "0" {
                        let key = "start continued by content, with pages from WAL frames the file lacked"
                        counts[key, default: 0] += 1
                    }
                }
            }
        }
        return counts
    }

    /// Prints the run's summary table.
    private func report(run: TortureRun, operations: Int, checker: Checker, proxy: FaultProxy?, failures: [String]) {
        var rows: [(String, String)] = [
            ("seed", "\(seed)"), ("store", store), ("operations", "\(operations)"),
            ("commits (with VACUUMs)", "\(run.workload.oracle.count - 1)"),
        ]
        rows += run.workload.counts.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        rows += run.events.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        if let proxy {
            rows += proxy.stats.sorted { $0.key < $1.key }.map { ("S3 \($0.key)", "\($0.value)") }
        }
        rows += Self.startDecisions(in: run.directory).sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        rows += [
            ("restores checked by txid", "\(checker.txidRestores)"),
            ("restores checked by time", "\(checker.timeRestores)"),
            ("restores whose recorded checksum was verified", "\(checker.checksumsVerified)"),
            (
                "of them from a snapshot alone, shorter than its segment by zero pages",
                "\(checker.snapshotsShorterThanTheirSegment)"
            ),
            (
                "walship verify findings",
                checker.verifyFindings.isEmpty
                    ? "none"
                    : checker.verifyFindings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                        separator: ", ")
            ),
            ("largest commit-to-observed lag", "\(checker.maxObserveLag) ms"),
            ("slowest app commit", "\(run.maxCommitMs) ms"), ("failures", "\(failures.count)"),
        ]
        let width = rows.map(\.0.count).max() ?? 10
        say("")
        say("| \("what".padding(toLength: width, withPad: " ", startingAt: 0)) | count |")
        say("|\(String(repeating: "-", count: width + 2))|-------|")
        for (name, value) in rows {
            say("| \(name.padding(toLength: width, withPad: " ", startingAt: 0)) | \(value) |")
        }
    }
}

/// Prints a line unbuffered, so a run's progress shows in a log file while it runs.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
