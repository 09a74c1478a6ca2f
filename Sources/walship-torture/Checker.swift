import Foundation
import WalshipCore
import WalshipS3
import WalshipTesting

/// Checks a replica against the oracle after a run, by restoring with the `walship` executable
/// like a user would:
/// 1. every restored state (by txid and by time) is one the application really had;
/// 2. within a generation, consecutive txids are consecutive commits (nothing skipped, nothing
///    twice), and no commit was observed before it started;
/// 3. a time restore returns the last restore point at or before the time (in the newest
///    generation that has one), or exit 6/7 exactly when the time is outside the window or in a
///    gap between generations;
/// 4. commits missing between generations are excused only by a downtime of the agent;
/// 5. the latest restore is the application's final state.
struct Checker {
    let oracle: [OracleCommit]
    let stops: [(ms: UInt64, how: AgentController.Stop)]
    let starts: [UInt64]
    let replicaURL: String
    let environment: [String: String]
    let directory: TemporaryDirectory
    var random: SeededGenerator

    /// A commit made this long before a stop may be lost with it (sync interval 200 ms plus a
    /// poll, with a 5x margin).
    static let stopTolerance: UInt64 = 2000
    /// Largest delay between a commit and the agent observing it, outside catch-up reads.
    static let observeLimit: UInt64 = 5000

    private(set) var failures: [String] = []
    private(set) var txidRestores = 0
    private(set) var timeRestores = 0
    private(set) var maxObserveLag: UInt64 = 0

    /// Restores from a snapshot alone whose copy ended before the segment's database size.
    private(set) var snapshotsShorterThanTheirSegment = 0
    private(set) var checksumsVerified = 0
    /// What `walship verify` reported, by kind.
    private(set) var verifyFindings: [String: Int] = [:]

    /// A second agent continued a copy of the first one's state for a while (a rolling deploy):
    /// the generations it forked are checked for validity only (every restore is a state the
    /// application had, or a refusal with exit 11), not for a one-to-one txid mapping.
    let forkEvent: Bool
    /// Generations that are part of a fork (two lineages, or overlapping segments).
    private var forked: Set<GenerationID> = []

    /// Commits that may be lost as restore points without a downtime: the last one before a copy
    /// put back in place while the agent runs (the agent may see the changed file before that
    /// commit's frames, and frames it has not read may then be from either database).
    let excused: Set<Int>

    /// The commits each `k` may stand for: the one that set it and any VACUUMs right after.
    private var commitsOfK: [Int64: ClosedRange<Int>] = [:]

    init(
        oracle: [OracleCommit], stops: [(ms: UInt64, how: AgentController.Stop)], starts: [UInt64], replicaURL: String,
        environment: [String: String], directory: TemporaryDirectory, seed: UInt64, forkEvent: Bool = false,
        excused: Set<Int> = []
    ) {
        self.forkEvent = forkEvent
        self.excused = excused
        self.oracle = oracle
        self.stops = stops
        self.starts = starts
        self.replicaURL = replicaURL
        self.environment = environment
        self.directory = directory
        self.random = SeededGenerator(seed: seed ^ 0xC4EC)
        for (index, commit) in oracle.enumerated() {
            if let range = commitsOfK[commit.k] {
                commitsOfK[commit.k] = range.lowerBound...index
            } else {
                commitsOfK[commit.k] = index...index
            }
        }
    }

    mutating func fail(_ message: String) { failures.append(message) }

    struct Restored {
        var status: Int32
        var stderr: String
        var txid: UInt64?
        var generation: String?
        var k: Int64?
        var hash: String?
        /// The database checksum the restore verified (`restore.checksum`), or nil for "none".
        var checksum: UInt64?
    }

    /// Runs `walship restore` with `extra` arguments and reads what it produced.
    mutating func restore(_ extra: [String]) throws -> Restored {
        let output = directory.file("check-\(txidRestores + timeRestores).db")
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: output + suffix) }
        }
        let result = try WalshipBinary.run(
            ["restore", replicaURL, "-o", output, "--quiet", "--log-format", "json"] + extra, environment: environment)
        var restored = Restored(status: result.status, stderr: result.stderr)
        guard result.status == 0 else { return restored }
        var snapshotAlone = false
        for line in result.stderr.split(separator: "\n") where line.contains("\"restore complete\"") {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            restored.txid = (object?["restore.txid"] as? String).flatMap { UInt64($0) }
            restored.generation = object?["generation"] as? String
            restored.checksum = (object?["restore.checksum"] as? String).flatMap { UInt64($0, radix: 16) }
            snapshotAlone = object?["restore.commit_time"] as? String == "snapshot"
        }
        // Every restore of a point whose segment records a checksum must report having verified
        // exactly it (a restore from a snapshot alone: see `matchesBeyondItsEnd`).
        if let generation = restored.generation, let txid = restored.txid,
            let transaction = GenerationID(hex: generation).flatMap({ observedBy[$0]?[txid] }),
            let checksum = transaction.checksum
        {
            let recorded = (checksum: checksum, pages: transaction.databasePages)
            if restored.checksum == recorded.checksum {
                checksumsVerified += 1
            } else if snapshotAlone, let checksum = restored.checksum,
                try Self.matchesBeyondItsEnd(output, checksum: checksum, recorded: recorded)
            {
                checksumsVerified += 1
                snapshotsShorterThanTheirSegment += 1
            } else {
                fail(
                    "restore of txid \(txid) of generation \(generation) verified checksum \(restored.checksum.map { String($0, radix: 16) } ?? "none"), the segment index records \(String(recorded.checksum, radix: 16))"
                )
            }
        }
        let connection = try Connection(path: output, mode: [.readOnly])
        defer { connection.close() }
        restored.k = try connection.scalarInt("SELECT k FROM meta")
        restored.hash = try ContentHash.of(connection: connection)
        return restored
    }

    /// Whether a restore from a snapshot alone is the segment's image of the same transaction but
    /// for zero pages past its end that SQLite never reads. The online backup copies the pages
    /// the database's header counts, while the WAL's commit records the size SQLite's pager
    /// tracks; the two differ after a database was overwritten in place by a shorter copy padded
    /// with zeros (docs/format.md, "Database checksum"). It is, when the copy ends at or before
    /// its header's size, and adding the zero pages from its end to the recorded size gives the
    /// recorded checksum.
    static func matchesBeyondItsEnd(
        _ path: String, checksum: UInt64, recorded: (checksum: UInt64, pages: UInt32)
    ) throws -> Bool {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        let header = try file.read(count: 100, at: 0)
        guard header.count == 100 else { return false }
        let pageSize = Int(header[16]) << 8 | Int(header[17])
        let effectivePageSize = pageSize == 1 ? 65536 : pageSize
        let pages = UInt32(try file.size() / Int64(effectivePageSize))
        let headerPages =
            UInt32(header[28]) << 24 | UInt32(header[29]) << 16 | UInt32(header[30]) << 8 | UInt32(header[31])
        guard pages < recorded.pages, headerPages <= pages else { return false }
        var extended = checksum
        for number in (pages + 1)...recorded.pages {
            extended ^= PageChecksum.zeroPageHash(number, pageSize: effectivePageSize)
        }
        return extended == recorded.checksum
    }

    /// The commits a restored state may be, or nil (and a failure) when the app never had it.
    mutating func commits(of restored: Restored, _ what: String) -> ClosedRange<Int>? {
        guard let k = restored.k, let range = commitsOfK[k] else {
            fail("\(what): restored meta.k \(restored.k.map(String.init) ?? "none") was never committed")
            return nil
        }
        // Commits of one k hold one content (a VACUUM keeps both), except around a copy put
        // back keeping the WAL: the commit before it and the state it left share their k.
        let matching = range.filter { oracle[$0].hash == restored.hash }
        guard let first = matching.first, let last = matching.last else {
            fail("\(what): the content at k=\(k) differs from the application's state after that commit")
            return nil
        }
        return first...last
    }

    /// The offset (commit = txid + offset) at which a run of consecutive txids maps to
    /// consecutive commits, from restores at its ends and at random txids; nil (and a failure)
    /// when no single offset fits.
    mutating func runOffset(_ generation: GenerationID, _ txids: ClosedRange<UInt64>, _ generations: Int) throws -> Int?
    {
        var low = Int.min
        var high = Int.max
        var samples: [UInt64] = [txids.lowerBound, txids.upperBound]
        for _ in 0..<(generations > 20 ? 2 : 6) { samples.append(UInt64.random(in: txids, using: &random)) }
        var index = 0
        var seen: [UInt64: ClosedRange<Int>] = [:]  // The commits each restored txid may be.
        while index < samples.count || (low < high && index < samples.count + 20) {
            let txid = index < samples.count ? samples[index] : UInt64.random(in: txids, using: &random)
            index += 1
            let restored = try restore(["--txid", String(txid), "--generation", "\(generation)"])
            txidRestores += 1
            guard restored.status == 0 else {
                fail(
                    "restore --txid \(txid) of generation \(generation) exited \(restored.status): \(restored.stderr.suffix(400))"
                )
                continue
            }
            guard let range = commits(of: restored, "txid \(txid)") else { continue }
            seen[txid] = range
            low = max(low, range.lowerBound - Int(txid))
            high = min(high, range.upperBound - Int(txid))
        }
        guard low <= high else {
            fail(
                "generation \(generation): txids \(txids) are not consecutive commits (skipped or repeated): \(seen.sorted { $0.key < $1.key }.map { "txid \($0.key) is commit \($0.value)" }.joined(separator: ", "))"
            )
            return nil
        }
        return low
    }

    /// A forked generation: restores at its first, last and a few random txids (with
    /// `--generation`) either give a state the application had or refuse with exit 11.
    mutating func checkForked(_ generation: GenerationID, inventory: ReplicaInventory) throws {
        guard let span = RestorePlanner(inventory: inventory).span(of: generation) else { return }
        var samples = [span.firstTxid, span.lastTxid]
        for _ in 0..<4 { samples.append(UInt64.random(in: span.firstTxid...span.lastTxid, using: &random)) }
        for txid in samples {
            let restored = try restore(["--txid", String(txid), "--generation", "\(generation)"])
            txidRestores += 1
            switch restored.status {
            case 0: _ = commits(of: restored, "txid \(txid) of forked generation \(generation)")
            case 11: break
            default:
                fail(
                    "restore --txid \(txid) of forked generation \(generation) exited \(restored.status): \(restored.stderr.suffix(300))"
                )
            }
        }
    }

    /// A run of a generation's txids that maps to consecutive commits: commit = txid + offset.
    struct Run {
        var generation: GenerationID
        var txids: ClosedRange<UInt64>
        var offset: Int
    }

    /// What the checks read from the replica, once.
    private var observedBy: [GenerationID: [UInt64: SegmentFormat.Transaction]] = [:]
    /// The generations checked one to one (forked ones are checked for validity only).
    private var spans: [RestorePlanner.GenerationSpan] = []
    /// When forked generations shipped (commits then may be restorable only there).
    private var forkedWindows: [ClosedRange<UInt64>] = []
    private var runs: [Run] = []

    mutating func run() async throws {
        guard try await load() else { return }
        try checkRuns()
        checkGaps()
        try checkTimeRestores()
        // 5. The latest restore point is the application's final state.
        let latestRestore = try restore([])
        if latestRestore.status != 0 {
            fail("restore of the latest point exited \(latestRestore.status): \(latestRestore.stderr.suffix(400))")
        } else if latestRestore.hash != oracle.last!.hash {
            fail("the latest restore (k=\(latestRestore.k ?? -1)) is not the final state (k=\(oracle.last!.k))")
        }
        txidRestores += 1
        try checkList()
        try checkVerify()
    }

    /// 6. `walship verify` finds every object sound and every segment chain linked; it may
    /// report forks (after a cloned machine) and orphans (a generation whose agent was killed
    /// before its first snapshot went up), which are no damage.
    private mutating func checkVerify() throws {
        let result = try WalshipBinary.run(["verify", replicaURL, "--json"], environment: environment)
        let output = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        guard let problems = output?["problems"] as? [[String: Any]] else {
            fail("walship verify exited \(result.status) without a report: \(result.stderr.suffix(400))")
            return
        }
        for problem in problems {
            let kind = problem["kind"] as? String ?? "?"
            verifyFindings[kind, default: 0] += 1
            if !["fork", "orphan"].contains(kind) || (kind == "fork" && !forkEvent) {
                fail("walship verify: \(kind): \(problem["message"] as? String ?? "")")
            }
        }
        if problems.isEmpty && result.status != 0 { fail("walship verify exited \(result.status) with no problem") }
    }

    /// Audits the replica and reads its generations, forks and transactions; false (and a
    /// failure) when it has no restore point.
    private mutating func load() async throws -> Bool {
        let replica = try ReplicaFactoryForChecks.replica(url: replicaURL, environment: environment)
        let audit = try await ReplicaAudit.run(replica: replica)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        if forkEvent {
            let planner = RestorePlanner(inventory: inventory)
            let lineage = try await Lineage.load(store: replica.store, inventory: inventory)
            forked = Set(lineage.forks.flatMap { $0 })
            forked.formUnion(inventory.generations.filter { planner.overlap(in: $0) != nil })
        }
        // Two agents on one lineage break its chains and reuse its txids: expected in the
        // generations they forked, and only there.
        for problem in audit.problems {
            let inForked = forked.contains { problem.contains("\($0)") }
            if forkEvent && (inForked || problem.contains("not strictly increasing")) { continue }
            fail("audit: \(problem)")
        }
        let allSpans = RestorePlanner(inventory: inventory).spans
        spans = allSpans.filter { !forked.contains($0.generation) }
        // Commits shipped in forked generations are restorable there only with --generation.
        forkedWindows = allSpans.filter { forked.contains($0.generation) }.map {
            ($0.firstMs - min($0.firstMs, Self.stopTolerance))...($0.lastMs + Self.stopTolerance)
        }
        for generation in forked { try checkForked(generation, inventory: inventory) }
        guard !spans.isEmpty else {
            fail("the replica has no restore point")
            return false
        }
        // Txids never repeat across generations, but look them up per generation anyway so that
        // a repeat shows as a failure of its own rather than as a wrong time.
        for generation in audit.generations {
            for transaction in generation.transactions {
                observedBy[generation.generation, default: [:]][transaction.txid] = transaction
            }
        }
        return true
    }

    /// 2. Each run of a generation's txids maps to consecutive commits at one offset (commit =
    /// txid + offset), and each was observed after its commit started and soon after it ended.
    /// A run ends before a transaction read from the database file (the pages changed while the
    /// agent was down, shipped as one transaction: it may stand for several commits, as a new
    /// generation's snapshot does).
    private mutating func checkRuns() throws {
        for span in spans {
            let observed = observedBy[span.generation] ?? [:]
            var runStarts = [span.firstTxid]
            runStarts += observed.values.filter {
                $0.isFromDatabaseFile && $0.txid > span.firstTxid && $0.txid <= span.lastTxid
            }
            .map(\.txid).sorted()
            for (index, first) in runStarts.enumerated() {
                let last = index + 1 < runStarts.count ? runStarts[index + 1] - 1 : span.lastTxid
                guard let offset = try runOffset(span.generation, first...last, spans.count) else { continue }
                runs.append(Run(generation: span.generation, txids: first...last, offset: offset))
            }
        }
        for run in runs { checkObserved(run) }
    }

    private mutating func checkObserved(_ run: Run) {
        let observed = observedBy[run.generation] ?? [:]
        for txid in run.txids {
            let commit = Int(txid) + run.offset
            guard commit >= 0, commit < oracle.count else {
                fail("generation \(run.generation): txid \(txid) maps past the application's commits")
                break
            }
            guard let transaction = observed[txid] else { continue }  // A snapshot's usable txid.
            if transaction.commitMs < oracle[commit].startMs {
                fail(
                    "txid \(txid) was observed at \(transaction.commitMs), before its commit started at \(oracle[commit].startMs)"
                )
            }
            let lateByRestart = starts.contains { $0 > oracle[commit].endMs && $0 <= transaction.commitMs }
            if !transaction.isLate && !lateByRestart && transaction.commitMs > oracle[commit].endMs {
                let lag = transaction.commitMs - oracle[commit].endMs
                maxObserveLag = max(maxObserveLag, lag)
                if lag > Self.observeLimit { fail("txid \(txid) was observed \(lag) ms after its commit") }
            }
        }
    }

    /// 4. Commits between runs (generations, or a transaction read from the database file) were
    /// lost as restore points only to a downtime.
    private mutating func checkGaps() {
        for (previous, next) in zip(runs, runs.dropFirst()) {
            let lastKept = Int(previous.txids.upperBound) + previous.offset
            var firstKept = Int(next.txids.lowerBound) + next.offset
            // A run's offset is the lowest that fits: when its first point's state is also a
            // later commit's (a VACUUM keeps the content), it may name the earlier one.
            if firstKept < lastKept, lastKept < oracle.count, firstKept >= 0,
                oracle[firstKept...lastKept].allSatisfy({ $0.hash == oracle[lastKept].hash })
            {
                firstKept = lastKept
            }
            guard firstKept >= lastKept else {
                fail(
                    "txid \(next.txids.lowerBound) of generation \(next.generation) holds commit \(firstKept), before the previous restore point's \(lastKept)"
                )
                continue
            }
            let nextMs =
                observedBy[next.generation]?[next.txids.lowerBound]?.commitMs
                ?? spans.first { $0.generation == next.generation }!.firstMs
            for commit in (lastKept + 1)..<max(lastKept + 1, firstKept) {
                let excused =
                    self.excused.contains(commit)
                    || stops.contains { stop in
                        stop.ms <= nextMs && oracle[commit].endMs + Self.stopTolerance >= stop.ms
                    }
                    || forkedWindows.contains { window in
                        window.contains(oracle[commit].endMs)
                    }
                if !excused {
                    fail("commit \(commit) (k=\(oracle[commit].k)) is not restorable, and no downtime explains it")
                    break
                }
            }
        }
    }

    /// 3. Restores at random times return the last restore point at or before the time, in the
    /// newest generation that has one, or exit 6/7 exactly outside the window or in a gap.
    private mutating func checkTimeRestores() throws {
        let earliest = spans.first!.firstMs
        let latest = spans.last!.lastMs
        for _ in 0..<max(20, min(spans.count * 6, 300)) {
            let target = UInt64.random(in: (earliest - min(earliest, 1500))...(latest + 500), using: &random)
            try checkTimeRestore(at: target, earliest: earliest, latest: latest)
        }
    }

    private mutating func checkTimeRestore(at target: UInt64, earliest: UInt64, latest: UInt64) throws {
        let restored = try restore(["--at", Timestamp.format(milliseconds: target)])
        timeRestores += 1
        // What the planner should answer, from the audit: the newest generation with a restore
        // point at or before the target, and its last such point.
        let candidates = spans.filter { $0.firstMs <= target }
        let what = "restore --at \(Timestamp.format(milliseconds: target))"
        switch restored.status {
        case 0:
            guard let range = commits(of: restored, what), let txid = restored.txid else { return }
            // A point of a forked generation: valid (a state the application had) is all.
            if let generation = restored.generation.flatMap({ GenerationID(hex: $0) }), forked.contains(generation) {
                return
            }
            guard let span = candidates.last ?? (target > latest ? spans.last : nil) else {
                fail("\(what) restored txid \(txid) though no generation has a restore point by then")
                return
            }
            let observed = observedBy[span.generation] ?? [:]
            let expected =
                (span.firstTxid...span.lastTxid).last { txid in
                    txid == span.firstTxid || (observed[txid].map { $0.commitMs <= target } ?? false)
                } ?? span.firstTxid
            if txid != expected {
                fail("\(what) restored txid \(txid), expected \(expected) in generation \(span.generation)")
            }
            if let run = runs.first(where: { $0.generation == span.generation && $0.txids.contains(txid) }),
                !range.contains(Int(txid) + run.offset)
            {
                fail("\(what): txid \(txid) holds k=\(restored.k!), not its commit's state")
            }
            if oracle[range.lowerBound].startMs > target {
                fail("\(what) restored a commit that started after the target")
            }
        case 6:
            if target >= earliest { fail("\(what) exited 6 inside the window: \(restored.stderr.suffix(300))") }
        case 7:
            let inGap = zip(spans, spans.dropFirst()).contains { $0.lastMs < target && target < $1.firstMs }
            if !inGap && forked.isEmpty { fail("\(what) exited 7 outside any gap: \(restored.stderr.suffix(300))") }
        case 11 where !forked.isEmpty:
            break  // A target in (or reaching across) a forked part of the lineage.
        default:
            fail("\(what) exited \(restored.status): \(restored.stderr.suffix(400))")
        }
    }

    /// The generations `walship list` shows are the ones checked.
    private mutating func checkList() throws {
        let list = try WalshipBinary.run(["list", replicaURL, "--json"], environment: environment)
        let object = try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        let listed = (object?["generations"] as? [[String: Any]])?.filter { $0["first_txid"] is NSNumber }.count ?? -1
        if list.status != 0 || listed != spans.count + forked.count {
            fail("walship list shows \(listed) generations with restore points, the replica has \(spans.count)")
        }
        if let forks = object?["forks"] as? [Any], !forks.isEmpty, !forkEvent {
            fail("walship list reports a fork: \(forks)")
        }
    }
}

/// The replica a URL names, built the way the executable does for the two kinds the torture
/// test uses.
enum ReplicaFactoryForChecks {
    static func replica(url: String, environment: [String: String]) throws -> Replica {
        if url.hasPrefix("file://") {
            return Replica(
                store: try FileObjectStore(root: String(url.dropFirst("file://".count))),
                layout: ReplicaLayout(prefix: ""))
        }
        guard let components = URLComponents(string: url), let bucket = components.host else {
            throw WalshipError(.usage, "bad replica URL \(url)")
        }
        let configuration = S3Configuration(
            bucket: bucket, endpoint: environment["AWS_ENDPOINT_URL"], region: "us-east-1")
        let credentials = AWSCredentials(
            accessKeyID: environment["AWS_ACCESS_KEY_ID"] ?? "",
            secretAccessKey: environment["AWS_SECRET_ACCESS_KEY"] ?? "",
            sessionToken: nil)
        return Replica(
            store: try S3ObjectStore(
                configuration: configuration, credentials: StaticCredentialsProvider(credentials, sourceName: "torture")
            ),
            layout: ReplicaLayout(prefix: components.path))
    }
}
