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

    func run() async throws {
        let directory = try TemporaryDirectory(prefix: "walship-torture")
        var random = SeededGenerator(seed: seed)
        var server: S3TestServer?
        var proxy: FaultProxy?
        defer {
            proxy?.stop()
            server?.stop()
        }
        let replicaURL: String
        var agentEnvironment: [String: String] = [:]
        var checkEnvironment: [String: String] = [:]
        if store == "s3" {
            let started = try await S3TestServer.start(
                buckets: ["torture"], kind: S3TestServer.Kind(rawValue: serverKind)!)
            server = started
            let faults = try FaultProxy(upstream: started.endpoint, seed: seed, rate: faultRate, directory: directory)
            proxy = faults
            let credentials = [
                "AWS_ACCESS_KEY_ID": started.accessKeyID, "AWS_SECRET_ACCESS_KEY": started.secretAccessKey,
                "AWS_REGION": "us-east-1",
            ]
            agentEnvironment = credentials.merging(["AWS_ENDPOINT_URL": faults.endpoint]) { $1 }
            checkEnvironment = credentials.merging(["AWS_ENDPOINT_URL": started.endpoint]) { $1 }
            replicaURL = "s3://torture/app"
        } else {
            replicaURL = "file://\(directory.file("replica"))"
        }

        let database = directory.file("app.db")
        let workload = try Workload(path: database, connections: 3)
        // The agent's wall clock can be stepped (file replicas only: a large step breaks SigV4).
        let clock = store == "file" ? try WallClockShift(directory: directory) : nil
        agentEnvironment.merge(clock?.environment ?? [:]) { $1 }
        let agent = AgentController(
            arguments: [
                "replicate", database, replicaURL, "--state-dir", directory.file("state"), "--sync-interval", "200ms",
                "--snapshot-interval", "15s", "--wal-max-frames", "300", "--log-level",
                ProcessInfo.processInfo.environment["TORTURE_AGENT_LOG_LEVEL"] ?? "info",
            ], environment: agentEnvironment, logPath: directory.file("agent.log"))
        try FileManager.default.createSymbolicLink(atPath: directory.file("link"), withDestinationPath: directory.path)
        try FileManager.default.createDirectory(atPath: directory.file("sub"), withIntermediateDirectories: false)
        agent.databasePaths = [database, directory.file("link/app.db"), directory.file("sub/../app.db")]
        try agent.start()

        var events: [String: Int] = [:]
        var appErrors: [String] = []
        var restartAt = 0
        var maxCommitMs: UInt64 = 0
        let deadline = minutes.map { Date().addingTimeInterval($0 * 60) }
        let limit = ops ?? (minutes == nil ? 3000 : Int.max)
        var op = 0
        // Scheduled events, at fixed points of each period of operations (the whole run when
        // --ops is given): a saved copy of the database put back over it in place, a second agent
        // continuing a copy of the first one's state for a while, and (file replicas) a step of
        // the agent's wall clock one hour back.
        let period = max(400, period ?? (minutes == nil ? ops : nil) ?? 4000)
        var secondAgent: AgentController?
        var clockStepped = false
        var forkEvent = false
        // The second agent stops, and the first one is killed (its next start finds the fork).
        func endFork() {
            secondAgent?.stop(.term)
            secondAgent = nil
            try? FileManager.default.removeItem(atPath: directory.file("state-b"))
            if agent.isRunning {
                agent.stop(.kill)
                events["agent kill -9", default: 0] += 1
            }
        }
        say("walship-torture: seed \(seed), work directory \(directory.path)")
        while op < limit, deadline.map({ Date() < $0 }) ?? true {
            op += 1
            agent.checkAlive()
            workload.releaseRead()
            if !agent.isRunning && op >= restartAt {
                try agent.start()
                events["agent starts", default: 0] += 1
            }
            switch op % period {
            case period / 4:
                try workload.saveCopy(to: directory.file("saved-copy.db"))
            case let point
            where point >= period * 9 / 20 && point < period * 3 / 5 && agent.isRunning && agent.hasSettled
                && workload.fit(of: directory.file("saved-copy.db")) != nil:
                let problems = try PutBack.run(
                    copy: directory.file("saved-copy.db"), workload: workload, agent: agent, events: &events,
                    using: &random)
                try? FileManager.default.removeItem(atPath: directory.file("saved-copy.db"))
                appErrors += problems.map { "op \(op): \($0)" }
            case period * 3 / 5 where agent.isRunning && secondAgent == nil:
                // A rolling deploy: a second agent with a copy of the first one's state.
                _ = try CommandRunner.run("/bin/cp", ["-a", directory.file("state"), directory.file("state-b")])
                var arguments = agent.arguments
                arguments[arguments.firstIndex(of: directory.file("state"))!] = directory.file("state-b")
                let second = AgentController(
                    arguments: arguments, environment: agentEnvironment, logPath: directory.file("agent-b.log"))
                try second.start()
                secondAgent = second
                forkEvent = true
                events["second agent on a copied state", default: 0] += 1
            case period * 7 / 10 where secondAgent != nil:
                endFork()
                restartAt = op + 1
            case period * 4 / 5 where clock != nil && !clockStepped:
                try clock?.set(milliseconds: -3_600_000)
                clockStepped = true
                events["agent wall clock stepped back 1 h", default: 0] += 1
            default:
                break
            }
            let roll = Int.random(in: 0..<1000, using: &random)
            do {
                switch roll {
                case 0..<8 where agent.isRunning:
                    agent.stop(.kill)
                    events["agent kill -9", default: 0] += 1
                    restartAt = op + Int.random(in: 0...300, using: &random)
                case 8..<12 where agent.isRunning:
                    let status = agent.stop(.term)
                    events["agent SIGTERM", default: 0] += 1
                    if status != 0 && status != 4 { appErrors.append("agent stop exited \(status ?? -1)") }
                    restartAt = op + Int.random(in: 0...100, using: &random)
                case 12..<17:
                    let k = workload.pendingK
                    let start = Workload.nowMs()
                    if try !Victim.killInCommit(database: database, k: k, directory: directory) {
                        appErrors.append("op \(op): the victim never reached COMMIT")
                    }
                    let landed = try workload.settleInDoubt(k: k, startMs: start)
                    events[landed ? "app killed in COMMIT (landed)" : "app killed in COMMIT", default: 0] += 1
                case 17..<67:
                    try workload.rollback(using: &random)
                case 67..<82:
                    try workload.vacuum(using: &random)
                case 82..<102:
                    try workload.setAutocheckpoint(using: &random)
                case 102..<162:
                    try workload.checkpoint(using: &random)
                case 162..<172:
                    try workload.restart()
                case 172..<176:
                    try workload.holdRead(milliseconds: UInt64.random(in: 1000...6000, using: &random))
                case 176..<272:
                    usleep(UInt32.random(in: 20_000...300_000, using: &random))
                    events["pauses", default: 0] += 1
                default:
                    let before = Workload.nowMs()
                    try workload.commit(using: &random)
                    maxCommitMs = max(maxCommitMs, Workload.nowMs() - before)
                }
            } catch {
                appErrors.append("op \(op): the application failed: \(error)")
            }
            usleep(UInt32.random(in: 0...2000, using: &random))
        }

        // Bring the agent up for the end (after a fork the run stopped in, the first agent's
        // restart finds it), let it ship the last commits with the faults off.
        workload.releaseRead(force: true)
        if secondAgent != nil { endFork() }
        if !agent.isRunning {
            try agent.start()
            events["agent starts", default: 0] += 1
        }
        for _ in 0..<20 {
            try workload.commit(using: &random)
            usleep(20_000)
        }
        usleep(1_000_000)
        proxy?.setFaults(false)
        let finalStop = agent.stop(.term)
        if finalStop != 0 {
            appErrors.append("the final SIGTERM stop exited \(finalStop ?? -1)")
            let once = try WalshipBinary.run(agent.arguments + ["--once"], environment: agentEnvironment)
            if once.status != 0 {
                appErrors.append("the final --once exited \(once.status): \(once.stderr.suffix(400))")
            }
        }
        appErrors += agent.unexpectedExits
        // Only one agent ever runs here: an object that met another under its key means one agent
        // built two different objects for the same transactions (issue 13).
        for problem in agent.logProblems(["object key already holds another object", "a spooled object is unreadable"])
        {
            appErrors.append(problem)
        }

        var checker = Checker(
            oracle: workload.oracle, stops: agent.stops, starts: agent.starts, replicaURL: replicaURL,
            environment: checkEnvironment, directory: directory, seed: seed, forkEvent: forkEvent)
        try await checker.run()
        workload.close()
        try workload.writeOracle(to: directory.file("oracle.tsv"))
        let failures = appErrors + checker.failures

        var rows: [(String, String)] = [
            ("seed", "\(seed)"), ("store", store), ("operations", "\(op)"),
            ("commits (with VACUUMs)", "\(workload.oracle.count - 1)"),
        ]
        rows += workload.counts.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        rows += events.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        if let proxy {
            rows += proxy.stats.sorted { $0.key < $1.key }.map { ("S3 \($0.key)", "\($0.value)") }
        }
        rows += [
            ("restores checked by txid", "\(checker.txidRestores)"),
            ("restores checked by time", "\(checker.timeRestores)"),
            ("restores whose recorded checksum was verified", "\(checker.checksumsVerified)"),
            ("largest commit-to-observed lag", "\(checker.maxObserveLag) ms"),
            ("slowest app commit", "\(maxCommitMs) ms"), ("failures", "\(failures.count)"),
        ]
        let width = rows.map(\.0.count).max() ?? 10
        say("")
        say("| \("what".padding(toLength: width, withPad: " ", startingAt: 0)) | count |")
        say("|\(String(repeating: "-", count: width + 2))|-------|")
        for (name, value) in rows {
            say("| \(name.padding(toLength: width, withPad: " ", startingAt: 0)) | \(value) |")
        }
        if failures.isEmpty {
            say("\npassed")
            if !keep { directory.remove() }
        } else {
            say("\nFAILED (\(failures.count)):")
            for failure in failures.prefix(40) { say("  - \(failure)") }
            if let server, server.kind == .rclone {
                _ = try? CommandRunner.run("/bin/cp", ["-a", server.dataRoot, directory.file("s3-data")])
            }
            say(
                "replay: scripts/torture --seed \(seed) --ops \(op) --period \(period) --store \(store) --server \(serverKind)"
            )
            say("work directory kept: \(directory.path)")
            throw ExitCode(1)
        }
    }
}

/// Prints a line unbuffered, so a run's progress shows in a log file while it runs.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
