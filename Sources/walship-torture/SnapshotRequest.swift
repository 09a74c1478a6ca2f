import Foundation
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// `walship snapshot` asks the running agent for a snapshot through its control socket (the
/// agent's `ControlService`), as an operator would before a risky migration.
enum SnapshotRequest {
    /// A settled agent must take the snapshot and upload it before the command returns (exit 0),
    /// and the replica must then list it. With `killing`, the agent is killed (-9) while the
    /// request waits: the command must end within 10 s, with 0 when the snapshot was uploaded
    /// first or 1 ("closed the control connection"), never hang. Returns the event and problems.
    static func run(
        agent: AgentController, database: String, directory: TemporaryDirectory, replicaURL: String,
        checkEnvironment: [String: String], killing: Bool, using random: inout SeededGenerator
    ) throws -> (event: String, problems: [String]) {
        let logPath = directory.file("snapshot-request-\(agent.starts.count).log")
        let asked = try AgentProcess(
            ["snapshot", database, "--state-dir", directory.file("state")], logPath: logPath,
            environment: agent.environment)
        if killing {
            usleep(UInt32.random(in: 0...300_000, using: &random))
            agent.stop(.kill)
        }
        let bound: TimeInterval = killing ? 10 : 180
        let started = Date()
        let status = asked.wait(timeout: bound)
        let seconds = Date().timeIntervalSince(started)
        let output = asked.log
        if asked.process.terminationReason == .uncaughtSignal {
            return (
                "",
                [
                    "walship snapshot did not end within \(Int(bound)) s\(killing ? " of the agent's kill" : ""): \(output.suffix(300))"
                ]
            )
        }
        if killing {
            guard status == 0 || status == 1 else {
                return (
                    "", ["walship snapshot exited \(status) when the agent was killed under it: \(output.suffix(300))"]
                )
            }
            return (
                status == 0
                    ? "snapshot asked, agent killed after it was uploaded"
                    : "snapshot asked, agent killed under the request (exit 1 in \(seconds < 2 ? "under 2" : "2 to 10") s)",
                []
            )
        }
        guard status == 0, let reply = output.firstMatch(of: /generation=([0-9a-f]+) txid=(\d+)/) else {
            return ("", ["walship snapshot asked of a settled agent exited \(status): \(output.suffix(300))"])
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
