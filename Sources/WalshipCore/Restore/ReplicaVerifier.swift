import Foundation
import Logging

/// `walship verify`: checks that a replica really restores. From one LIST it downloads every
/// object (a few at a time, each to a temporary file deleted once checked: never a full copy of
/// the replica) and checks its header against its key, its size, its payload SHA-256 and that its
/// payload decompresses to the size the header gives; then the links of each generation's segment
/// chain (each segment names the previous one's last txid and payload SHA-256), the gaps in it,
/// forks, and objects no restore can use. Trial restores (the latest point, and a time) run
/// through the same `Restorer` as `walship restore`, which checks the database checksum recorded
/// for the point and runs `PRAGMA integrity_check`.
public struct ReplicaVerifier: Sendable {
    /// One thing found wrong.
    public struct Finding: Sendable, Equatable, Encodable {
        public enum Kind: String, Sendable, Encodable {
            /// An object fails its checks (header, size, checksum, compression).
            case corrupt
            /// An object listed could not be read back (deleted meanwhile, or lost).
            case missing
            /// A segment does not name the one before it (a replaced or foreign object).
            case chain
            /// Txids a generation's segment chain lacks.
            case gap
            /// Two lineages, or a generation two agents continued.
            case fork
            /// Objects no restore can use: segments of a generation without a snapshot, or keys
            /// walship does not recognize under `generations/`.
            case orphan
            /// A trial restore failed.
            case restore
        }

        public var kind: Kind
        public var key: String?
        public var message: String

        public init(kind: Kind, key: String?, message: String) {
            self.kind = kind
            self.key = key
            self.message = message
        }

        /// The failure class (and so the exit status) this finding stands for.
        public var code: WalshipError.Code {
            switch kind {
            case .corrupt, .missing, .chain, .gap, .orphan: .objectCorrupt
            case .fork: .fork
            case .restore: .integrityCheckFailed
            }
        }
    }

    /// One trial restore.
    public struct TrialRestore: Sendable, Encodable {
        /// `latest`, or the time asked for.
        public var target: String
        public var generation: String?
        public var txid: UInt64?
        /// The database checksum the restore verified (hex), or nil when the point has none.
        public var checksum: String?
        public var seconds: Double
        public var error: String?
        /// Why the restore was not tried (the agent's `verify-max-bytes`).
        public var skipped: String?

        public init(target: String) {
            self.target = target
            seconds = 0
        }
    }

    public struct Report: Sendable {
        public var objects = 0
        public var bytes: Int64 = 0
        public var generations = 0
        public var findings: [Finding] = []
        public var restores: [TrialRestore] = []
        /// The header of every sound object, by key.
        public var headers: [String: ObjectHeader] = [:]
        /// Objects not downloaded: larger than the check's `maxObjectBytes`.
        public var skipped: [String] = []

        /// Nil when all is well, else the most serious finding's failure class (a corrupt or
        /// missing object before a failed restore before a fork).
        public var failure: WalshipError.Code? {
            let order: [Finding.Kind] = [.corrupt, .missing, .chain, .gap, .orphan, .restore, .fork]
            return order.lazy.compactMap { kind in findings.first { $0.kind == kind }?.code }.first
        }
    }

    let replica: Replica
    let logger: Logger
    /// Objects checked at once.
    var parallel = 4

    public init(replica: Replica, logger: Logger, parallel: Int = 4) {
        self.replica = replica
        self.logger = logger
        self.parallel = max(1, parallel)
    }

    /// Checks every object of `inventory` and the structure of the replica. Temporary files go
    /// into `directory`. Store errors (other than a missing object) are thrown. Objects in
    /// `known` (their headers, from an earlier check: objects are never rewritten) are not
    /// downloaded again; the report's `headers` hold every sound object's.
    public func check(
        inventory: ReplicaInventory, directory: String, known: [String: ObjectHeader] = [:],
        maxObjectBytes: Int64? = nil,
        progress: @escaping @Sendable (_ objects: Int, _ bytes: Int64) -> Void = { _, _ in }
    ) async throws -> Report {
        var report = Report()
        report.generations = inventory.generations.count
        var unchecked = inventory
        unchecked.snapshots.removeAll { known[$0.key] != nil }
        unchecked.segments.removeAll { known[$0.key] != nil }
        if let maxObjectBytes {
            report.skipped =
                unchecked.snapshots.filter { $0.size > maxObjectBytes }.map(\.key)
                + unchecked.segments.filter { $0.size > maxObjectBytes }.map(\.key)
            unchecked.snapshots.removeAll { $0.size > maxObjectBytes }
            unchecked.segments.removeAll { $0.size > maxObjectBytes }
        }
        var headers = try await checkObjects(unchecked, directory: directory, report: &report, progress: progress)
        for entry in inventory.snapshots.map(\.key) + inventory.segments.map(\.key) {
            if let header = known[entry] { headers[entry] = header }
        }
        report.headers = headers
        report.findings += Self.chainFindings(inventory: inventory, headers: headers)
        report.findings += Self.structureFindings(inventory: inventory)
        // The first snapshots' headers were just checked: no GET for the lineage but of unsound ones.
        let lineage = try await Lineage.load(store: replica.store, inventory: inventory, known: headers)
        for fork in lineage.forks {
            report.findings.append(
                Finding(
                    kind: .fork, key: nil,
                    message:
                        "generations \(fork.map { "\($0)" }.joined(separator: ", ")) are separate lineages (two agents replicating to one replica); restores of them need --generation"
                ))
        }
        return report
    }

    /// Restores one target into `directory` (the restorer checks the point's recorded database
    /// checksum and runs `PRAGMA integrity_check`) and deletes the result. A plan larger than
    /// `maxBytes` is not restored: the trial says so and counts as skipped, not failed.
    public func trialRestore(
        _ name: String, _ target: RestorePlanner.Target, inventory: ReplicaInventory, directory: String,
        maxBytes: Int64? = nil, isCancelled: @escaping @Sendable () -> Bool = { false }
    ) async -> TrialRestore {
        var trial = TrialRestore(target: name)
        let output = "\(directory)/trial-\(name == "latest" ? "latest" : "at").db"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileSystem.removeIfPresent(output + suffix) }
        }
        let clock = ContinuousClock()
        let started = clock.now
        do {
            let plan = try RestorePlanner(inventory: inventory).plan(target)
            trial.generation = "\(plan.generation)"
            if let maxBytes, plan.bytes > maxBytes {
                trial.skipped =
                    "the point needs \(ValueParsing.formatBytes(plan.bytes)) of objects, more than verify-max-bytes (\(ValueParsing.formatBytes(maxBytes)))"
                return trial
            }
            var options = Restorer.Options()
            options.isCancelled = isCancelled
            let report = try await Restorer(replica: replica, options: options, logger: logger).restore(
                plan, to: output)
            trial.txid = report.txid
            trial.checksum = report.verifiedChecksum.map { Hex.pad($0, 16) }
        } catch {
            trial.error = "trial restore of \(name) failed: \(error)"
        }
        trial.seconds = (clock.now - started).seconds
        return trial
    }

    /// Downloads and checks each object; returns the headers of the sound ones by key.
    private func checkObjects(
        _ inventory: ReplicaInventory, directory: String, report: inout Report,
        progress: @escaping @Sendable (Int, Int64) -> Void
    ) async throws -> [String: ObjectHeader] {
        typealias Expected = (key: String, size: Int64, check: @Sendable (ObjectHeader) -> String?)
        /// An object whose header must say what its key says.
        func expected(
            _ key: String, _ size: Int64, _ kind: ObjectHeader.Kind, _ generation: GenerationID, _ first: UInt64,
            _ last: UInt64
        ) -> Expected {
            (
                key, size,
                { header in
                    header.kind == kind && header.generation == generation.value && header.firstTxid == first
                        && header.lastTxid == last
                        ? nil
                        : "its header (\(header.kind), txids \(header.firstTxid)-\(header.lastTxid)) does not match its key"
                }
            )
        }
        let expected =
            inventory.snapshots.map {
                expected($0.key, $0.size, .snapshot, $0.generation, $0.fromTxid, $0.usableTxid)
            }
            + inventory.segments.map {
                expected($0.key, $0.size, .segment, $0.generation, $0.firstTxid, $0.lastTxid)
            }
        var headers: [String: ObjectHeader] = [:]
        let store = replica.store
        try await withThrowingTaskGroup(of: (String, Int64, Result<ObjectHeader, WalshipError>).self) { group in
            var next = 0
            func schedule() {
                // A cancelled check (the agent stopping) starts no further download.
                guard next < expected.count, !Task.isCancelled else { return }
                let object = expected[next]
                let path = "\(directory)/object-\(next)"
                next += 1
                group.addTask {
                    defer { try? FileSystem.removeIfPresent(path) }
                    do {
                        _ = try await store.download(object.key, to: path)
                        let header = try ObjectFile.read(path: path, key: object.key) { _, _ in }
                        if let problem = object.check(header) {
                            return (object.key, object.size, .failure(WalshipError(.objectCorrupt, problem)))
                        }
                        return (object.key, object.size, .success(header))
                    } catch let error as WalshipError
                        where error.code == .objectNotFound || error.code == .objectCorrupt
                    {
                        return (object.key, object.size, .failure(error))
                    }
                }
            }
            for _ in 0..<parallel { schedule() }
            while let (key, size, result) = try await group.next() {
                report.objects += 1
                report.bytes += size
                switch result {
                case .success(let header): headers[key] = header
                case .failure(let error):
                    report.findings.append(
                        Finding(
                            kind: error.code == .objectNotFound ? .missing : .corrupt, key: key, message: error.message)
                    )
                }
                progress(report.objects, report.bytes)
                schedule()
            }
        }
        return headers
    }

    /// Each segment that follows another (its first txid right after the other's last) must
    /// name it: its last txid and its payload SHA-256. In a generation two agents continued, two
    /// segments can end at one txid: naming either of them is a link (the fork is reported apart).
    static func chainFindings(inventory: ReplicaInventory, headers: [String: ObjectHeader]) -> [Finding] {
        var findings: [Finding] = []
        for generation in inventory.generations {
            let segments = inventory.segments(of: generation).compactMap { entry in
                headers[entry.key].map { (entry: entry, header: $0) }
            }
            let endingAt = Dictionary(grouping: segments, by: \.entry.lastTxid)
            for (entry, header) in segments {
                guard entry.firstTxid > 0, let before = endingAt[entry.firstTxid - 1] else { continue }
                let linked = before.contains {
                    header.predecessorTxid == $0.header.lastTxid && header.predecessorSHA256 == $0.header.payloadSHA256
                }
                if !linked {
                    findings.append(
                        Finding(
                            kind: .chain, key: entry.key,
                            message:
                                "segment '\(entry.key)' does not name the segment before it ('\(before[0].entry.key)'): one of them was replaced or written by another agent"
                        ))
                }
            }
        }
        return findings
    }

    /// The first run of a generation's txids (from its earliest restore point to its newest
    /// segment) that no snapshot reaches through consecutive segments, or nil. This also finds a
    /// hole between a snapshot and the generation's first segment, which has no segment before it.
    static func unreachable(_ generation: GenerationID, planner: RestorePlanner) -> ClosedRange<UInt64>? {
        let reaches = planner.reaches(of: generation)
        let segments = planner.inventory.segments(of: generation)
        guard let newest = segments.map(\.lastTxid).max() else { return nil }
        let starts = planner.inventory.snapshots(of: generation).map(\.usableTxid)
        guard var txid = starts.min(), txid < newest else { return nil }
        while txid <= newest {
            if let covering = reaches.filter({ $0.snapshot.usableTxid <= txid && $0.lastTxid >= txid }).map(\.lastTxid)
                .max()
            {
                txid = covering + 1
                continue
            }
            // Uncovered from here to the next point a snapshot makes restorable.
            let next = starts.filter { $0 > txid }.min().map { $0 - 1 } ?? newest
            return txid...min(next, newest)
        }
        return nil
    }

    /// Gaps in segment chains, generations two agents continued, and objects no restore can use.
    static func structureFindings(inventory: ReplicaInventory) -> [Finding] {
        let planner = RestorePlanner(inventory: inventory)
        var findings: [Finding] = []
        let newest = inventory.generations.last
        for generation in inventory.generations {
            for hole in planner.missingTxids(in: generation) {
                findings.append(
                    Finding(
                        kind: .gap, key: nil,
                        message:
                            "generation \(generation) lacks the segments of txids \(hole.lowerBound)-\(hole.upperBound): restore points after them are reachable only from a later snapshot"
                    ))
            }
            if let branch = planner.overlap(in: generation) {
                findings.append(
                    Finding(
                        kind: .fork, key: nil,
                        message:
                            "generation \(generation) was continued by two agents from txid \(branch): its segments overlap"
                    ))
            }
            let segments = inventory.segments(of: generation)
            if inventory.snapshots(of: generation).isEmpty && !segments.isEmpty {
                let transient =
                    generation == newest
                    ? " (if an agent started it just now, its first snapshot may still be on its way: verify again later)"
                    : ""
                findings.append(
                    Finding(
                        kind: .orphan, key: segments.first?.key,
                        message:
                            "generation \(generation) has \(segments.count) segments and no snapshot: none of its points can be restored\(transient)"
                    ))
            } else if let unreachable = Self.unreachable(generation, planner: planner) {
                findings.append(
                    Finding(
                        kind: .gap, key: nil,
                        message:
                            "generation \(generation): the points of txids \(unreachable.lowerBound)-\(unreachable.upperBound) cannot be restored: no snapshot reaches them through its segments (segments missing after a snapshot)"
                    ))
            }
        }
        for key in inventory.unrecognized {
            findings.append(
                Finding(
                    kind: .orphan, key: key, message: "'\(key)' is not a walship object (left there by another tool?)"))
        }
        return findings
    }
}
