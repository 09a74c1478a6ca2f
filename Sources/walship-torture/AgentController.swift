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

    /// SIGTERM, and a new start at once, before the old process has exited (a supervisor that
    /// restarts without waiting). The new one exits 3 when the old one still held the database
    /// lock; it is then started again, as the supervisor would. Returns the old one's exit status
    /// and whether the new one was refused once.
    func restartOverlapping() throws -> (stopped: Int32, refused: Bool) {
        guard let old = process else { return (0, false) }
        stops.append((Workload.nowMs(), .term))
        kill(old.pid, SIGTERM)
        process = nil
        try start()
        let stopped = old.wait(timeout: 60)
        guard let new = process else { return (stopped, false) }
        // The new one decides on the lock at once; give it a moment to exit if it was refused.
        _ = new.waitForLog("replicating", timeout: 5)
        guard !new.isRunning || new.log.contains("another walship agent") else { return (stopped, false) }
        let status = new.wait(timeout: 10)
        stops.append((Workload.nowMs(), .term))
        process = nil
        if status != 3 { unexpectedExits.append("an agent started while another stopped exited \(status)") }
        try start()
        return (stopped, true)
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
