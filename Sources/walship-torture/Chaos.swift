import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The agent under test (`walship replicate`), started, killed and restarted by the driver; it
/// remembers when it went down so the checker can excuse exactly the commits a downtime may cost.
final class AgentController {
    enum Stop: String { case kill = "kill -9", term = "SIGTERM" }

    let arguments: [String]
    let environment: [String: String]
    let logPath: String
    private(set) var process: AgentProcess?
    /// Wall clock (Unix ms) of each stop and of each start.
    private(set) var stops: [(ms: UInt64, how: Stop)] = []
    private(set) var starts: [UInt64] = []
    private(set) var unexpectedExits: [String] = []

    init(arguments: [String], environment: [String: String], logPath: String) {
        self.arguments = arguments
        self.environment = environment
        self.logPath = logPath
    }

    var isRunning: Bool { process != nil }

    /// Paths that reach the database (`arguments[1]`), used by the starts in turn: the same file
    /// through a symlinked directory or `..` is the same database.
    var databasePaths: [String] = []

    /// Starts the agent (with `extraEnvironment` for this start only); each start logs to its own
    /// file (`agent.log.N`).
    func start(extraEnvironment: [String: String] = [:]) throws {
        starts.append(Workload.nowMs())
        var arguments = arguments
        if !databasePaths.isEmpty { arguments[1] = databasePaths[starts.count % databasePaths.count] }
        process = try AgentProcess(
            arguments, logPath: "\(logPath).\(starts.count)",
            environment: environment.merging(extraEnvironment) { $1 })
    }

    /// The current start's log so far.
    var currentLog: String { process?.log ?? "" }

    /// Whether the current start has decided where it stands: it continued its generation, or
    /// its new generation's snapshot is taken. Before that, a change to the database file is
    /// part of what the start reads (its snapshot copies it), not something to notice.
    var hasSettled: Bool {
        let log = currentLog
        return log.contains("continuing generation") || log.contains("snapshot taken")
    }

    /// Waits (at most `seconds`) until the current start has settled; returns whether it did.
    func waitUntilSettled(seconds: Int = 60) -> Bool {
        (0..<(seconds * 10)).contains { _ in
            if hasSettled { return true }
            usleep(100_000)
            return false
        }
    }

    /// Waits until the current start's log contains `text`; returns whether it did.
    func waitForLog(_ text: String, timeout: TimeInterval) -> Bool {
        process?.waitForLog(text, timeout: timeout) ?? false
    }

    /// How many lines of every start's log contain `text`.
    func logCount(_ text: String) -> Int {
        (1...max(1, starts.count)).reduce(0) { count, start in
            let log = (try? String(contentsOfFile: "\(logPath).\(start)", encoding: .utf8)) ?? ""
            return count + log.split(separator: "\n").filter { $0.contains(text) }.count
        }
    }

    /// Lines of every start's log that contain one of `texts` (at most 10).
    func logProblems(_ texts: [String]) -> [String] {
        var found: [String] = []
        for start in 1...max(1, starts.count) {
            let log = (try? String(contentsOfFile: "\(logPath).\(start)", encoding: .utf8)) ?? ""
            for line in log.split(separator: "\n") where texts.contains(where: { line.contains($0) }) {
                found.append("agent start \(start): \(line.prefix(400))")
            }
        }
        return Array(found.prefix(10))
    }

    /// Notes an agent that exited on its own (it never should).
    func checkAlive() {
        guard let process, !process.isRunning else { return }
        unexpectedExits.append("the agent exited by itself with status \(process.process.terminationStatus)")
        stops.append((Workload.nowMs(), .kill))
        self.process = nil
    }

    /// One `replicate --once` run while the agent is stopped (cron mode), logged and counted like
    /// a start and a stop; returns its exit status and log.
    func runOnce() throws -> (status: Int32, log: String) {
        precondition(process == nil, "--once runs while the agent is stopped")
        starts.append(Workload.nowMs())
        var arguments = arguments
        if !databasePaths.isEmpty { arguments[1] = databasePaths[starts.count % databasePaths.count] }
        let result = try WalshipBinary.run(arguments + ["--once"], environment: environment)
        try? result.stderr.write(toFile: "\(logPath).\(starts.count)", atomically: true, encoding: .utf8)
        stops.append((Workload.nowMs(), .term))
        return (result.status, result.stderr)
    }

    /// SIGTERM, then a second one once the agent says it is stopping: returns its exit status
    /// (130 when the second one ended it) and how long it took to exit after the second.
    func stopTwice() -> (status: Int32, seconds: TimeInterval)? {
        guard let process else { return nil }
        stops.append((Workload.nowMs(), .term))
        defer { self.process = nil }
        kill(process.pid, SIGTERM)
        _ = process.waitForLog("stopping: shipping what is committed", timeout: 30)
        let second = Date()
        kill(process.pid, SIGTERM)
        let status = process.wait(timeout: 60)
        return (status, Date().timeIntervalSince(second))
    }

    /// Stops the agent; returns the exit status of a SIGTERM stop.
    @discardableResult
    func stop(_ how: Stop) -> Int32? {
        guard let process else { return nil }
        stops.append((Workload.nowMs(), how))
        defer { self.process = nil }
        switch how {
        case .kill:
            process.killHard()
            return nil
        case .term:
            return process.stop(timeout: 60)
        }
    }
}

/// An application process killed inside COMMIT, after writing its frames and before SQLite
/// publishes them: strace holds it at its WAL sync.
enum Victim {
    /// Runs the victim for commit `k`; returns false when strace or the victim did not behave.
    static func killInCommit(database: String, k: Int64, directory: TemporaryDirectory) throws -> Bool {
        guard let strace = CommandRunner.which("strace") else {
            throw WalshipError(.internal, "strace is missing: run scripts/setup")
        }
        // A copy with a unique path, so pkill finds this run's victim only.
        let source = URL(fileURLWithPath: TestScripts.path("victim.py"))
        let script = directory.file("victim-\(UInt32.random(in: 0...UInt32.max)).py")
        try FileManager.default.copyItem(atPath: source.path, toPath: script)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let python = CommandRunner.which("python3") ?? "/usr/bin/python3"
        let victim = Process()
        victim.executableURL = URL(fileURLWithPath: strace)
        victim.arguments = [
            "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync", "-e",
            "inject=fsync,fdatasync:delay_enter=30s", python, script, database, String(k),
        ]
        let pipe = Pipe()
        victim.standardOutput = pipe
        victim.standardError = FileHandle.nullDevice
        try victim.run()
        var output = Data()
        let deadline = Date().addingTimeInterval(20)
        while !String(decoding: output, as: UTF8.self).contains("committing") && Date() < deadline {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
        }
        let sawCommit = String(decoding: output, as: UTF8.self).contains("committing")
        // COMMIT writes its frames in well under this, then waits in the delayed sync.
        usleep(400_000)
        _ = try CommandRunner.run("/usr/bin/pkill", ["-9", "-f", script])
        victim.waitUntilExit()
        return sawCommit
    }
}

extension AgentController {
    /// Whether what the agent logs after the first `offset` bytes of its current log satisfies
    /// `found` within `seconds`.
    func logs(after offset: Int, within seconds: Int, _ found: (Substring) -> Bool) -> Bool {
        (0..<(seconds * 10)).contains { _ in
            if found(Substring(String(decoding: currentLog.utf8.dropFirst(offset), as: UTF8.self))) { return true }
            usleep(100_000)
            return false
        }
    }
}

/// A saved copy of the database put back over it in place (same inode, as `cp old.db app.db`
/// does), in one of four ways, while the agent runs and has finished starting (one still
/// starting may take its snapshot of the overwritten file, which needs no noticing).
enum PutBack {
    enum Way: CaseIterable { case closed, afterRestart, keepingWAL }

    /// Runs the event, counting it in `events`; returns the problems found. A commit the agent
    /// may lose to it goes into `excused`.
    static func run(
        copy: String, workload: Workload, agent: AgentController, directory: TemporaryDirectory,
        events: inout [String: Int], excused: inout Set<Int>, using random: inout SeededGenerator
    ) throws -> [String] {
        var problems: [String] = []
        guard let fit = workload.fit(of: copy) else { return [] }
        var event = "database overwritten in place"
        let way = fit == .fits ? Way.allCases.randomElement(using: &random)! : .closed
        if way == .afterRestart {
            event += " (agent started on a truncated WAL)"
            problems += try restartOnTruncatedWAL(agent: agent, workload: workload)
        }
        // Only what the agent logs from here on can be about this overwrite.
        let logBefore = agent.currentLog.utf8.count
        func logged(seconds: Int, _ found: (Substring) -> Bool) -> Bool {
            agent.logs(after: logBefore, within: seconds, found)
        }
        if fit == .larger {
            // SQLite reports the file malformed until the wal-index is built again from it: the
            // application stays closed until the agent has either noticed the change and taken
            // its snapshot (its connections opened again first, which builds the wal-index
            // again) or said the file is malformed (and let go of it).
            event = "older, larger copy put back"
            var malformed = false
            try workload.overwriteInPlace(with: copy) {
                let settled = logged(seconds: 30) {
                    malformed = $0.contains("SQLite reports the database malformed")
                    return malformed || $0.contains("snapshot taken", after: "the database file changed behind SQLite")
                }
                if !settled { problems.append("the agent did not notice the larger copy put back") }
            }
            if malformed {
                events["larger copy: SQLite reported it malformed", default: 0] += 1
                if !logged(seconds: 60, { $0.contains("snapshot taken", after: "the database is readable again") }) {
                    problems.append("the agent did not start a new generation once SQLite read the database again")
                }
            }
        } else {
            if way == .keepingWAL {
                // The application keeps its connections and its WAL: the file changes under
                // them, and only its pages show it.
                guard let commit = try workload.prepareWALAlivePutBack(copy: copy) else {
                    events["copy put back keeping the WAL: skipped (not only meta's page in the WAL)", default: 0] += 1
                    return problems
                }
                // The agent reads the commit within a poll, as a rule; if it sees the changed file
                // first, the commit's frames can no longer be told from later ones.
                usleep(1_000_000)
                excused.insert(commit)
                event = "copy put back keeping the application's connections and WAL"
                try workload.putBackKeepingWAL(copy: copy, in: directory)
            } else {
                try workload.overwriteInPlace(with: copy)
            }
            // Noticed as drift, or (an agent just starting) shipped as a transaction read from
            // the file: either way the replica holds what the application has. The application
            // waits for the new generation's first snapshot, so the state it now has is a
            // restore point of its own (points start at that snapshot).
            let noticed = logged(seconds: 30) {
                $0.contains("snapshot taken", after: "the database file changed behind SQLite")
                    || $0.contains("shipped as one transaction read from the database file")
            }
            if !noticed { problems.append("the agent did not notice the database overwritten in place") }
        }
        events[event, default: 0] += 1
        return problems
    }

    /// The drift gap: the agent starts while the wal-index shows no frames (a restart pending),
    /// and nothing is written after the overwrite.
    private static func restartOnTruncatedWAL(agent: AgentController, workload: Workload) throws -> [String] {
        var problems: [String] = []
        if let status = agent.stop(.term), status != 0 && status != 4 {
            problems.append("agent stop exited \(status)")
        }
        try workload.truncateWAL()
        try agent.start()
        if !agent.waitUntilSettled() { problems.append("the agent did not finish starting within 60 s") }
        return problems
    }
}

extension Substring {
    /// Whether `text` occurs after the first occurrence of `marker`.
    func contains(_ text: String, after marker: String) -> Bool {
        guard let range = range(of: marker) else { return false }
        return self[range.upperBound...].contains(text)
    }
}

/// The first snapshot of a generation damaged in the store, or gone (a prune or a hand that
/// deleted it), while the agent runs: `list`, the latest restore, `verify` (which must name the
/// object) and a dry-run prune keep working; a restore that needs the object exits 9 (or 6/7 when
/// it is gone) and writes nothing. The object is put back afterwards, so the checker's restores
/// at the end see an undamaged replica.
enum SnapshotDamage {
    enum Way: String, CaseIterable {
        case header = "first snapshot's header damaged in the store"
        case body = "first snapshot's body damaged in the store"
        case missing = "first snapshot missing from the store"
    }

    /// Runs the event; returns its name for the counts (nil when no snapshot qualified) and the
    /// problems found.
    static func run(
        replicaURL: String, environment: [String: String], directory: TemporaryDirectory,
        using random: inout SeededGenerator
    ) async throws -> (event: String?, problems: [String]) {
        let replica = try ReplicaFactoryForChecks.replica(url: replicaURL, environment: environment)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        let newest = inventory.generations.max { $0.value < $1.value }
        // The latest restore point must not need the damaged object: a first snapshot of an
        // older generation, or of the newest one when a later snapshot follows it.
        // (Nor the one the latest point starts from now: a newer snapshot whose segments are not
        // all up yet reaches nothing, and uploads only ever move the latest point past it.)
        let latestSnapshot = try? RestorePlanner(inventory: inventory).plan(.latest).snapshot.key
        let candidates = inventory.generations.compactMap { generation -> ReplicaLayout.SnapshotEntry? in
            let snapshots = inventory.snapshots(of: generation).sorted { $0.takenMs < $1.takenMs }
            guard let first = snapshots.first, generation != newest || snapshots.count > 1, first.key != latestSnapshot
            else { return nil }
            return first
        }
        guard let target = candidates.randomElement(using: &random) else { return (nil, []) }
        let way = Way.allCases.randomElement(using: &random)!
        let original = try await replica.store.get(target.key, range: nil)
        switch way {
        case .header, .body:
            var damaged = original
            let offset = way == .header ? 0 : damaged.count / 2 + Int.random(in: 0..<16, using: &random)
            damaged[min(offset, damaged.count - 1)] ^= 0x5a
            try await replica.store.put(target.key, body: .bytes(damaged), ifNoneMatch: false)
        case .missing:
            try await replica.store.delete(target.key)
        }
        var problems: [String] = []
        func walship(_ arguments: [String]) throws -> CommandRunner.Output {
            try WalshipBinary.run(arguments, environment: environment)
        }
        let what = "with \(target.key) \(way == .missing ? "missing" : "damaged")"
        let list = try walship(["list", replicaURL, "--json"])
        if list.status != 0 {
            problems.append("walship list \(what) exited \(list.status): \(list.stderr.suffix(300))")
        }
        let latest = directory.file("damage-latest.db")
        let restore = try walship(["restore", replicaURL, "-o", latest, "--quiet"])
        if restore.status != 0 {
            problems.append("the latest restore \(what) exited \(restore.status): \(restore.stderr.suffix(300))")
        }
        try? FileManager.default.removeItem(atPath: latest)
        let needing = directory.file("damage-needing.db")
        let needs = try walship([
            "restore", replicaURL, "-o", needing, "--quiet", "--generation", "\(target.generation)", "--txid",
            String(target.usableTxid),
        ])
        // A generation whose only object is gone is not in the replica any more: --generation of
        // it is a usage error (2); with other objects left it has no restore point there (6, 7).
        let alone =
            inventory.segments(of: target.generation).isEmpty && inventory.snapshots(of: target.generation).count == 1
        let expected: Set<Int32> = way == .missing ? (alone ? [2] : [6, 7, 9]) : [9]
        if !expected.contains(needs.status) {
            problems.append(
                "a restore of txid \(target.usableTxid) \(what) exited \(needs.status), expected \(expected.sorted()): \(needs.stderr.suffix(300))"
            )
        }
        if FileManager.default.fileExists(atPath: needing) {
            problems.append("a failed restore \(what) left its output file")
            try? FileManager.default.removeItem(atPath: needing)
        }
        let verify = try walship(["verify", replicaURL, "--json"])
        if (try? JSONSerialization.jsonObject(with: Data(verify.stdout.utf8))) == nil {
            problems.append(
                "walship verify \(what) exited \(verify.status) without a report: \(verify.stderr.suffix(300))")
        } else if way != .missing && (verify.status != 9 || !verify.stdout.contains(target.key)) {
            problems.append("walship verify \(what) exited \(verify.status) and did not name the object")
        }
        let prune = try walship(["prune", replicaURL, "--retention", "1s", "--retention-grace", "0s", "--dry-run"])
        if prune.status != 0 {
            problems.append("walship prune --dry-run \(what) exited \(prune.status): \(prune.stderr.suffix(300))")
        }
        try await replica.store.put(target.key, body: .bytes(original), ifNoneMatch: false)
        return (way.rawValue, problems)
    }
}
