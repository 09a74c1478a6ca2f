import Foundation
import Logging
import Synchronization

/// The agent's `walship verify` on a schedule (`verify-interval`, off by default). Every interval
/// in which the agent uploaded or deleted something, it lists the replica once, checks the
/// objects it has not checked before (objects are never rewritten, so each is downloaded once per
/// agent run), checks the chains and gaps of the whole replica, and restores the latest point
/// into `<state-dir>/verify` (with its recorded checksum and `PRAGMA integrity_check`; skipped,
/// and said so, when the point needs more than `verify-max-bytes` of objects). The result goes to
/// the status page and the metrics; a failed verify is logged as an error, never fatal.
///
/// In a replica an agent is writing, forks and orphans (a generation whose agent was killed
/// before its first snapshot went up, or one whose snapshot is still uploading) are reported but
/// are no failure (`walship verify` exits 9 or 11 on them); an object listed and then deleted by
/// this agent's retention is not "missing".
final class VerifyTask: Sendable {
    let replica: Replica
    let interval: Duration
    let maxBytes: Int64
    /// Where objects and the trial restore are written while checked (emptied each run).
    let directory: String
    let logger: Logger
    let metrics: ReplicationMetrics
    private let known = Mutex<[String: ObjectHeader]>([:])

    /// Findings that fail a verify in a running agent's replica.
    static let failing: Set<ReplicaVerifier.Finding.Kind> = [.corrupt, .missing, .chain, .gap, .restore]

    init(
        replica: Replica, interval: Duration, maxBytes: Int64, directory: String, logger: Logger,
        metrics: ReplicationMetrics
    ) {
        self.replica = replica
        self.interval = interval
        self.maxBytes = maxBytes
        self.directory = directory
        self.logger = logger
        self.metrics = metrics
    }

    /// Verifies one interval after the start, then every interval in which the replica changed
    /// (no request while nothing was uploaded or deleted), until `stop`.
    func run(until stop: StopSignal) async {
        var verifiedAfter: UInt64?
        while !stop.isStopped {
            await stop.sleep(for: interval)
            if stop.isStopped { return }
            let values = metrics.current
            let changes = values.segmentsUploaded + values.snapshotsUploaded + values.retentionDeletedObjects
            if changes == verifiedAfter { continue }
            // A stop never waits for a verify: it is abandoned (cancelled; it only reads the
            // store and writes under `directory`, which the next one empties first).
            let finished = Finished()
            let work = Task {
                await self.verify(stop: stop)
                finished.set()
            }
            while !finished.isSet && !stop.isStopped { await stop.sleep(for: .milliseconds(200)) }
            if !finished.isSet {
                work.cancel()
                return
            }
            verifiedAfter = changes
        }
    }

    /// Whether an abandoned verify's task has ended.
    private final class Finished: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    /// One verify; its result is recorded in the metrics.
    func verify(stop: StopSignal) async {
        let clock = ContinuousClock()
        let started = clock.now
        var result = VerifyResult()
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileSystem.createDirectories(directory)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
            let verifier = ReplicaVerifier(replica: replica, logger: logger, parallel: 2)
            var report = try await verifier.check(
                inventory: inventory, directory: directory, known: known.withLock { $0 }, maxObjectBytes: maxBytes)
            try Task.checkCancellation()
            known.withLock { $0 = report.headers }
            // Deleted by this agent's retention between the LIST and the download.
            let live = metrics.inventory.map { Set($0.snapshots.map(\.key) + $0.segments.map(\.key)) }
            report.findings.removeAll { finding in
                finding.kind == .missing && live.map { !$0.contains(finding.key ?? "") } == true
            }
            if !inventory.snapshots.isEmpty {
                let trial = await verifier.trialRestore(
                    "latest", .latest, inventory: inventory, directory: directory, maxBytes: maxBytes,
                    isCancelled: { stop.isStopped || Task.isCancelled })
                if let error = trial.error {
                    report.findings.append(ReplicaVerifier.Finding(kind: .restore, key: nil, message: error))
                }
                result.trialRestore = trial
            }
            result.objectsChecked = report.objects
            result.objectsSkipped = report.skipped
            result.objectsKnown = report.headers.count
            result.problems = report.findings
            result.ok = !report.findings.contains { Self.failing.contains($0.kind) }
        } catch {
            // Abandoned by a stop: no result, and nothing to report.
            if error is CancellationError || Task.isCancelled { return }
            result.ok = false
            result.error = "verify could not run: \(error)"
        }
        if Task.isCancelled { return }
        result.seconds = (clock.now - started).seconds
        let finishedMs = UInt64(Date().timeIntervalSince1970 * 1000)
        result.at = Timestamp.format(milliseconds: finishedMs)
        metrics.record { values in
            values.verifyRuns += 1
            if result.ok { values.lastVerifySuccessMs = finishedMs } else { values.verifyFailures += 1 }
        }
        metrics.recordVerify(result)
        let metadata: Logger.Metadata = [
            "replica": "\(replica.location)", "verify.objects_checked": "\(result.objectsChecked)",
            "verify.problems": "\(result.problems.count)",
            "verify.trial_restore_txid": "\(result.trialRestore?.txid.map(String.init) ?? "none")",
        ]
        if result.ok {
            logger.info("verified the replica", metadata: metadata)
            if let skipped = result.trialRestore?.skipped {
                logger.warning("verify skipped its trial restore: \(skipped)", metadata: metadata)
            }
        } else {
            let what =
                result.error
                ?? result.problems.filter { Self.failing.contains($0.kind) }.prefix(5).map {
                    "\($0.kind.rawValue): \($0.message)"
                }.joined(separator: "; ")
            logger.error("verify found problems in the replica: \(what)", metadata: metadata)
        }
    }
}

/// The last scheduled verify (status page, `lastVerify`).
public struct VerifyResult: Sendable, Encodable {
    /// When it finished.
    public var at = ""
    public var ok = false
    public var seconds = 0.0
    /// Objects downloaded and checked this time; sound objects known in all.
    public var objectsChecked = 0
    public var objectsKnown = 0
    /// Objects larger than `verify-max-bytes`, not downloaded (`walship verify` checks them).
    public var objectsSkipped: [String] = []
    public var problems: [ReplicaVerifier.Finding] = []
    public var trialRestore: ReplicaVerifier.TrialRestore?
    /// The verify could not run (the store unreachable, the state directory full).
    public var error: String?
}
