import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// One run of the torture test: the application workload, the agent, and the events and chaos
/// scheduled by operation count from the seed.
final class TortureRun {
    let directory: TemporaryDirectory
    let workload: Workload
    let agent: AgentController
    /// Operations per period of scheduled events.
    let period: Int
    /// The agent's wall clock, when it can be stepped (file replicas only: a large step breaks
    /// SigV4).
    let clock: WallClockShift?
    private var random: SeededGenerator
    private(set) var events: [String: Int] = [:]
    /// What went wrong on the application's side or the agent's, outside the checker.
    private(set) var problems: [String] = []
    private(set) var maxCommitMs: UInt64 = 0
    /// Whether two agents ever ran at once (the checker then accepts forked generations).
    private(set) var forkEvent = false
    private var restartAt = 0
    private var secondAgent: AgentController?
    private var clockStepped = false

    init(
        directory: TemporaryDirectory, workload: Workload, agent: AgentController, period: Int,
        clock: WallClockShift?, seed: UInt64
    ) {
        self.directory = directory
        self.workload = workload
        self.agent = agent
        self.period = period
        self.clock = clock
        random = SeededGenerator(seed: seed)
    }

    private var savedCopy: String { directory.file("saved-copy.db") }

    /// One operation: the agent restarted when due, the scheduled event at this point of the
    /// period, and one seeded step of chaos or workload.
    func step(_ op: Int) throws {
        agent.checkAlive()
        workload.releaseRead()
        if !agent.isRunning && op >= restartAt {
            try agent.start()
            count("agent starts")
        }
        try scheduledEvent(op)
        do {
            try chaos(op)
        } catch {
            problems.append("op \(op): the application failed: \(error)")
        }
        usleep(UInt32.random(in: 0...2000, using: &random))
    }

    /// The events at fixed points of each period: a copy of the database saved, then put back
    /// over it in place; a second agent continuing a copy of the first one's state for a while
    /// (a rolling deploy); and (file replicas) the agent's wall clock stepped one hour back.
    private func scheduledEvent(_ op: Int) throws {
        switch op % period {
        case period / 4:
            try workload.saveCopy(to: savedCopy)
        case let point
        where point >= period * 9 / 20 && point < period * 3 / 5 && agent.isRunning && agent.hasSettled
            && workload.fit(of: savedCopy) != nil:
            let found = try PutBack.run(
                copy: savedCopy, workload: workload, agent: agent, events: &events, using: &random)
            try? FileManager.default.removeItem(atPath: savedCopy)
            problems += found.map { "op \(op): \($0)" }
        case period * 3 / 5 where agent.isRunning && secondAgent == nil:
            try startSecondAgent()
        case period * 7 / 10 where secondAgent != nil:
            endFork()
            restartAt = op + 1
        case period * 4 / 5 where clock != nil && !clockStepped:
            try clock?.set(milliseconds: -3_600_000)
            clockStepped = true
            count("agent wall clock stepped back 1 h")
        default:
            break
        }
    }

    /// A second agent with a copy of the first one's state directory: on this host it waits for
    /// the replica lock while the first one runs (a rolling deploy); or, as a cloned machine would
    /// (the lock turned off), it runs beside the first one and forks the generation.
    private func startSecondAgent() throws {
        _ = try CommandRunner.run("/bin/cp", ["-a", directory.file("state"), directory.file("state-b")])
        var arguments = agent.arguments
        arguments[arguments.firstIndex(of: directory.file("state"))!] = directory.file("state-b")
        let cloned = Bool.random(using: &random)
        let second = AgentController(
            arguments: arguments,
            environment: agent.environment.merging(cloned ? ["WALSHIP_TEST_WITHOUT_REPLICA_LOCK": "1"] : [:]) { $1 },
            logPath: directory.file("agent-b.log"))
        try second.start()
        secondAgent = second
        if cloned {
            forkEvent = true
            count("second agent on a copied state, as a cloned machine")
        } else {
            count("second agent on a copied state (rolling deploy)")
        }
    }

    /// The second agent stops, and the first one is killed (its next start finds the fork).
    private func endFork() {
        secondAgent?.stop(.term)
        secondAgent = nil
        try? FileManager.default.removeItem(atPath: directory.file("state-b"))
        if agent.isRunning {
            agent.stop(.kill)
            count("agent kill -9")
        }
    }

    /// One seeded step: a kill or stop of the agent, an application process killed in COMMIT,
    /// or a piece of the workload.
    private func chaos(_ op: Int) throws {
        switch Int.random(in: 0..<1000, using: &random) {
        case 0..<8 where agent.isRunning:
            agent.stop(.kill)
            count("agent kill -9")
            restartAt = op + Int.random(in: 0...300, using: &random)
        case 8..<12 where agent.isRunning:
            let status = agent.stop(.term)
            count("agent SIGTERM")
            if status != 0 && status != 4 { problems.append("agent stop exited \(status ?? -1)") }
            restartAt = op + Int.random(in: 0...100, using: &random)
        case 12..<17:
            let k = workload.pendingK
            let start = Workload.nowMs()
            if try !Victim.killInCommit(database: workload.path, k: k, directory: directory) {
                problems.append("op \(op): the victim never reached COMMIT")
            }
            let landed = try workload.settleInDoubt(k: k, startMs: start)
            count(landed ? "app killed in COMMIT (landed)" : "app killed in COMMIT")
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
            count("pauses")
        default:
            let before = Workload.nowMs()
            try workload.commit(using: &random)
            maxCommitMs = max(maxCommitMs, Workload.nowMs() - before)
        }
    }

    /// The end of the run: a fork still going is ended (the first agent's restart finds it), the
    /// agent ships the last commits with the faults off (`faultsOff`) and stops gracefully.
    func finish(faultsOff: () -> Void) throws {
        workload.releaseRead(force: true)
        if secondAgent != nil { endFork() }
        if !agent.isRunning {
            try agent.start()
            count("agent starts")
        }
        for _ in 0..<20 {
            try workload.commit(using: &random)
            usleep(20_000)
        }
        usleep(1_000_000)
        faultsOff()
        let finalStop = agent.stop(.term)
        if finalStop != 0 {
            problems.append("the final SIGTERM stop exited \(finalStop ?? -1)")
            let once = try WalshipBinary.run(agent.arguments + ["--once"], environment: agent.environment)
            if once.status != 0 {
                problems.append("the final --once exited \(once.status): \(once.stderr.suffix(400))")
            }
        }
        problems += agent.unexpectedExits
        // The first agent never meets a second one under an object's key (the second one's
        // generations are its own): an object that met another means one agent built two
        // different objects for the same transactions (issue 13).
        problems += agent.logProblems(["object key already holds another object", "a spooled object is unreadable"])
    }

    private func count(_ event: String) { events[event, default: 0] += 1 }
}
