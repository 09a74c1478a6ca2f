import Foundation
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// `walship snapshot` asks the running agent for a snapshot through its control socket (the
/// agent's `ControlService`), as an operator would before a risky migration.
enum SnapshotRequest {
    /// What happens to the agent while the request waits (found by the review of the control
    /// service: a request during a stop exited 1 and the stopping agent took the snapshot anyway;
    /// an agent started while its predecessor stopped could run without a socket).
    enum Interruption: CaseIterable {
        /// Nothing: the snapshot must be uploaded before the command returns (exit 0) and listed.
        case none
        /// kill -9: the command must end within 10 s, 0 (uploaded first), 1 (connection closed) or
        /// 2 (no agent listened any more when it connected: a killed agent's socket refuses).
        case kill
        /// SIGTERM: the command must end by the time the agent has stopped, 0 or 3 ("stopping").
        case stop
        /// SIGTERM and a new agent started at once, as a supervisor restarting it without waiting:
        /// once the new one runs, a request to it must succeed (its socket is there).
        case restart
    }

    /// Runs the event; returns what happened and the problems found.
    static func run(
        agent: AgentController, database: String, directory: TemporaryDirectory, replicaURL: String,
        checkEnvironment: [String: String], interruption: Interruption, using random: inout SeededGenerator
    ) throws -> (event: String, problems: [String]) {
        func ask() throws -> AgentProcess {
            try AgentProcess(
                ["snapshot", database, "--state-dir", directory.file("state")],
                logPath: directory.file("snapshot-request-\(agent.starts.count).log"), environment: agent.environment)
        }
        if interruption == .restart {
            let (stopped, refused) = try agent.restartOverlapping()
            guard stopped == 0 || stopped == 4 else {
                return ("", ["the agent's stop for a restart exited \(stopped)"])
            }
            guard agent.waitUntilSettled() else { return ("", ["the restarted agent did not settle within 60 s"]) }
            let (_, problems) = try uploaded(by: ask(), replicaURL: replicaURL, checkEnvironment: checkEnvironment)
            let event =
                "agent restarted before its predecessor stopped\(refused ? " (refused once: the lock)" : ""), then a snapshot asked"
            return (event, problems)
        }
        let asked = try ask()
        usleep(UInt32.random(in: 0...300_000, using: &random))
        switch interruption {
        case .none, .restart:
            return try uploaded(by: asked, replicaURL: replicaURL, checkEnvironment: checkEnvironment)
        case .kill:
            agent.stop(.kill)
            let (status, output) = wait(for: asked, seconds: 10)
            guard let status, status == 0 || status == 1 || (status == 2 && output.contains("no agent is running"))
            else {
                return ("", ["walship snapshot with the agent killed under it: \(describe(status, output))"])
            }
            return ("snapshot asked, agent killed under the request (exit \(status))", [])
        case .stop:
            let stopped = agent.stop(.term)
            let (status, output) = wait(for: asked, seconds: 5)
            var problems: [String] = []
            if let stopped, stopped != 0 && stopped != 4 { problems.append("the agent's stop exited \(stopped)") }
            guard let status, status == 0 || status == 3 else {
                return ("", problems + ["walship snapshot during the agent's stop: \(describe(status, output))"])
            }
            return ("snapshot asked, agent stopped under the request (exit \(status))", problems)
        }
    }

    /// The command's exit status (nil when it was still running after `seconds`) and output.
    private static func wait(for process: AgentProcess, seconds: TimeInterval) -> (Int32?, String) {
        let status = process.wait(timeout: seconds)
        return (process.process.terminationReason == .uncaughtSignal ? nil : status, process.log)
    }

    private static func describe(_ status: Int32?, _ output: String) -> String {
        "\(status.map { "exited \($0)" } ?? "did not end in time"): \(output.suffix(300))"
    }

    /// A request to a settled agent: exit 0, and the replica lists the snapshot it names.
    private static func uploaded(
        by asked: AgentProcess, replicaURL: String, checkEnvironment: [String: String]
    ) throws -> (event: String, problems: [String]) {
        let (status, output) = wait(for: asked, seconds: 180)
        guard status == 0, let reply = output.firstMatch(of: /generation=([0-9a-f]+) txid=(\d+)/) else {
            return ("", ["walship snapshot asked of a settled agent: \(describe(status, output))"])
        }
        let list = try WalshipBinary.run(["list", replicaURL, "--json"], environment: checkEnvironment)
        let object = try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        let generations = (object?["generations"] as? [[String: Any]]) ?? []
        let listed = generations.contains { generation in
            guard generation["id"] as? String == String(reply.1) else { return false }
            let snapshots = (generation["snapshots"] as? [[String: Any]]) ?? []
            return snapshots.contains { ($0["usable_txid"] as? NSNumber)?.uint64Value == UInt64(reply.2) }
        }
        guard listed else {
            return (
                "", ["walship snapshot reported generation \(reply.1) txid \(reply.2), which the replica does not list"]
            )
        }
        return ("snapshot asked of the running agent, uploaded and listed", [])
    }
}
