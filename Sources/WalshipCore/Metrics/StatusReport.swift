import Foundation

/// What `GET /api/v1/status` answers and `GET /` shows (schema in docs/operations.md): each
/// database's replication state, and its replica's generations, snapshots and restore window as
/// the agent knows them (its start LIST plus what it uploaded and pruned since). Building it
/// makes no request to the store and never touches the database.
public struct StatusReport: Encodable, Sendable {
    public var version: String
    public var sqliteVersion: String
    public var generatedAt: String
    /// Start-up is done (`/readyz`).
    public var ready: Bool
    public var databases: [Database]

    public struct Database: Encodable, Sendable {
        public var path: String
        public var replica: String
        /// `starting` (before the first catch-up), `replicating`, or `lagging` (a transaction
        /// read from the WAL more than `StatusReport.laggingAfterSeconds` ago is not in the
        /// store yet: a store outage, or a full spool).
        public var state: String
        public var generation: String?
        public var generationStartedAt: String?
        public var observedTxid: UInt64
        public var shippedTxid: UInt64
        /// As `walship_replication_lag_seconds`.
        public var lagSeconds: Double
        public var lastUploadAt: String?
        public var lastSnapshotAt: String?
        /// The WAL's published frames at the last poll, in bytes (header included).
        public var walBytes: Int64
        public var spoolObjects: Int
        public var spoolBytes: Int64
        public var spoolMaxBytes: Int64
        public var spoolFullEvents: UInt64
        public var uploadFailures: UInt64
        public var snapshotFailures: UInt64
        public var objectConflicts: UInt64
        public var retentionDeletedObjects: UInt64
        public var retentionFailures: UInt64
        /// The last scheduled verify (`verify-interval`); absent before one, or when off.
        public var lastVerify: VerifyResult?
        /// The replica as `walship list --json` shows it (forks only as the inventory shows
        /// them: `walship list` also reads each generation's first snapshot header).
        public var listing: ReplicaListing?
        /// The command that restores the latest point.
        public var restoreLatest: String?
        /// With `?at=TIME`: what a restore to that time gives, and its command.
        public var point: Point?
    }

    public struct Point: Encodable, Sendable {
        /// As asked, and as a time (a relative one resolved when the report was made).
        public var at: String
        public var time: String?
        public var command: String?
        /// The generation the restore reads, and the newest txid it may reach: it restores the
        /// last transaction committed at or before the time (segment indexes say which).
        public var generation: String?
        public var txidAtMost: UInt64?
        /// The time lies after the newest restore point, so the restore gives that point.
        public var afterLatest: Bool?
        /// Why the time cannot be restored (outside the window, in a gap, not a time).
        public var error: String?
    }

    public static let laggingAfterSeconds = 10.0

    /// The report now; `at` is a restore target as `walship restore --at` takes it.
    public static func make(
        _ sources: [MetricsExposition.Source], version: String, sqliteVersion: String, ready: Bool, at: String?,
        nowMs: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)
    ) -> StatusReport {
        StatusReport(
            version: version, sqliteVersion: sqliteVersion, generatedAt: Timestamp.format(milliseconds: nowMs),
            ready: ready, databases: sources.map { database($0, at: at, nowMs: nowMs) })
    }

    private static func database(_ source: MetricsExposition.Source, at: String?, nowMs: UInt64) -> Database {
        let values = source.metrics.current
        let inventory = source.metrics.inventory
        let lag = values.pendingSinceMs.map { Double(nowMs > $0 ? nowMs - $0 : 0) / 1000 } ?? 0
        let time = { (ms: UInt64) in ms == 0 ? nil : Timestamp.format(milliseconds: ms) }
        let output = "./\(Self.stem(of: source.database))-restored.db"
        var database = Database(
            path: source.database, replica: source.replica,
            state: !values.started ? "starting" : lag > laggingAfterSeconds ? "lagging" : "replicating",
            generation: values.generation.map { "\($0)" }, generationStartedAt: time(values.generationStartedMs),
            observedTxid: values.observedTxid, shippedTxid: values.shippedTxid, lagSeconds: lag,
            lastUploadAt: time(values.lastUploadMs), lastSnapshotAt: time(values.lastSnapshotMs),
            walBytes: values.walFrames == 0 ? 0 : 32 + Int64(values.walFrames) * Int64(24 + values.pageSize),
            spoolObjects: values.spoolObjects, spoolBytes: values.spoolBytes, spoolMaxBytes: source.spoolMaxBytes,
            spoolFullEvents: values.spoolFullEvents, uploadFailures: values.uploadFailures,
            snapshotFailures: values.snapshotFailures, objectConflicts: values.objectConflicts,
            retentionDeletedObjects: values.retentionDeletedObjects, retentionFailures: values.retentionFailures,
            lastVerify: source.metrics.lastVerify)
        guard let inventory else { return database }
        let listing = ReplicaListing(
            location: source.replica, inventory: inventory, lineage: Lineage(inventory: inventory))
        database.listing = listing
        if listing.restoreWindow != nil {
            database.restoreLatest = Shell.command(["walship", "restore", source.replica, "-o", output])
        }
        if let at, !at.isEmpty {
            database.point = point(at, inventory: inventory, replica: source.replica, output: output, nowMs: nowMs)
        }
        return database
    }

    private static func point(
        _ at: String, inventory: ReplicaInventory, replica: String, output: String, nowMs: UInt64
    ) -> Point {
        var point = Point(at: at)
        do {
            let ms = try inventory.time(at, now: Date(timeIntervalSince1970: Double(nowMs) / 1000))
            let plan = try RestorePlanner(inventory: inventory).plan(.time(ms))
            point.generation = "\(plan.generation)"
            point.txidAtMost = plan.lastTxid
            point.afterLatest = plan.clampedToLatest
            // A relative time is resolved now: the command restores this point when run later.
            point.time = Timestamp.format(milliseconds: ms)
            point.command = Shell.command(["walship", "restore", replica, "-o", output, "--at", point.time!])
        } catch {
            point.error = "\(error)"
        }
        return point
    }

    /// `app` for `/srv/app.db`.
    static func stem(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? "database"
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}

extension StatusReport.Point {
    init(at: String) {
        self.init(at: at, time: nil, command: nil, generation: nil, txidAtMost: nil, afterLatest: nil, error: nil)
    }
}

/// Commands an operator can paste into a POSIX shell.
enum Shell {
    static func quote(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_./:@%+=,-".contains($0)) }
        if plain && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func command(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }
}
