import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Where a replica's local state lives, and moving it when that place changes. A database with
/// one bucket keeps its state in the database's directory (`<state-dir>/<db>-<hash>`); with
/// several, each bucket's is `<database directory>/replicas/<bucket>`. Adding a bucket, removing
/// one or renaming one therefore moves where a replica's state is expected: the state (and the
/// spool of objects not yet uploaded, which only that replica may receive) is found by the
/// replica it records and moved into place, so nothing waiting in a spool is abandoned.
enum ReplicaStateDirectory {
    /// When `directory` has no state, adopts the state (and spool) that another state directory
    /// of the same database holds for `replica`. Call with the database lock held.
    static func adopt(into directory: String, databaseDirectory: String, replica: String, logger: Logger) throws {
        let statePath = directory + "/state.json"
        guard !FileSystem.exists(statePath) else { return }
        var candidates = [databaseDirectory]
        let replicas = databaseDirectory + "/replicas"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: replicas) {
            candidates += names.sorted().map { "\(replicas)/\($0)" }
        }
        for candidate in candidates where FileSystem.absolute(candidate) != FileSystem.absolute(directory) {
            guard let state = ReplicaState.load(from: candidate + "/state.json"), state.replica == replica else {
                continue
            }
            let spool = candidate + "/spool"
            let target = directory + "/spool"
            if FileSystem.exists(spool) {
                // An empty spool directory left here is replaced; one with objects is not ours to
                // judge, so nothing is moved.
                if FileSystem.exists(target) && rmdir(target) != 0 {
                    logger.warning(
                        "the local state of this replica is in another directory, but this one has a spool of its own; not moving it",
                        metadata: ["state.from": "\(candidate)", "state.to": "\(directory)"])
                    return
                }
                try FileSystem.rename(spool, to: target)
            }
            try FileSystem.rename(candidate + "/state.json", to: statePath)
            try FileSystem.syncDirectory(directory)
            try FileSystem.syncDirectory(candidate)
            logger.info(
                "moved this replica's local state (its bucket list changed)",
                metadata: ["state.from": "\(candidate)", "state.to": "\(directory)", "replica": "\(replica)"])
            return
        }
    }
}
