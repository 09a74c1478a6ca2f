import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

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
