import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Carries out a `RestorePlanner.Plan` through a `RestorePipeline`: downloads the snapshot and
/// segments (up to `parallel` objects ahead, to temporary files), verifies every object's checksum, header and predecessor
/// link, writes the snapshot into a temporary file beside the output, applies the segments'
/// page after-images in txid order (following each transaction's database size), stops at the
/// target, then fsyncs, runs `PRAGMA integrity_check` and renames into place. Memory stays
/// bounded whatever the database size; a failure never leaves a file at the output path.
public struct Restorer: Sendable {
    public struct Options: Sendable {
        public var parallel = 8
        public var force = false
        /// Checked between objects and before the result is placed; true cancels the restore
        /// (exit 130) and removes the temporary files.
        public var isCancelled: @Sendable () -> Bool = { false }
        /// The clock the report's stage times are measured on.
        public var clock: any MonotonicClock = ContinuousClock()

        public init() {}
    }

    public struct Progress: Sendable {
        public var objectsDone: Int
        public var objectsTotal: Int
        public var bytesDone: Int64
        public var bytesTotal: Int64
    }

    public struct Report: Sendable {
        public var generation: GenerationID
        public var txid: UInt64
        public var commitMs: UInt64?
        public var pageCount: Int
        public var downloadTime: Duration
        /// Summed over the segments decoded ahead (several at once), so not wall time.
        public var decodeTime: Duration
        /// Writing the snapshot, the decoded segments' pages, and segments too large to decode
        /// ahead (decoded as they are written).
        public var applyTime: Duration
        public var integrityCheckTime: Duration
        /// The result's database checksum when it was compared with the one the agent recorded
        /// for the restore point (and matched); nil when the restore point has none.
        public var verifiedChecksum: UInt64?
        /// The database identity of the restored replica (unknown for format version 1).
        public var databaseID: DatabaseID
    }

    public let replica: Replica
    public let options: Options
    public let logger: Logger

    public init(replica: Replica, options: Options, logger: Logger) {
        self.replica = replica
        self.options = options
        self.logger = logger
    }

    private func checkCancelled() throws {
        if options.isCancelled() { throw WalshipError(.cancelled, "restore cancelled; no output was written") }
    }

    public func restore(
        _ plan: RestorePlanner.Plan, to output: String, progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> Report {
        let outputPath = FileSystem.absolute(output)
        try OutputPlacement.checkDestination(outputPath, force: options.force)
        let temporary = FileSystem.temporarySibling(of: outputPath, purpose: "restore")
        let downloads = FileSystem.temporarySibling(of: outputPath, purpose: "download")
        try FileSystem.createDirectories(downloads, mode: 0o700)
        defer {
            FileSystem.removeDatabaseFiles(temporary)
            FileSystem.removeTree(downloads)
        }
        let applier = try PageApplier(path: temporary)
        var pipeline = RestorePipeline(
            plan: plan, downloads: downloads, store: replica.store, parallel: options.parallel,
            processors: Self.processorCount, clock: options.clock)
        let totalBytes = pipeline.totalBytes
        var applyTime = Duration.zero
        try await withThrowingTaskGroup(of: RestorePipeline.Step.self) { group in
            pipeline.start(in: &group)
            while !pipeline.isFinished, let step = try await group.next() {
                pipeline.record(step, in: &group)
                // Apply every object that is ready, in order.
                while let ready = pipeline.nextReady() {
                    try checkCancelled()
                    let start = options.clock.now
                    try await apply(ready, to: applier, plan: plan)
                    applyTime += options.clock.now - start
                    pipeline.applied(ready, in: &group)
                    progress(
                        Progress(
                            objectsDone: pipeline.done, objectsTotal: pipeline.objects.count,
                            bytesDone: pipeline.bytesDone, bytesTotal: totalBytes))
                    if applier.reachedTarget {
                        group.cancelAll()
                        pipeline.finishEarly()
                    }
                }
            }
        }
        try applier.finish(plan: plan)
        let checkStart = options.clock.now
        let verifiedChecksum = try await verify(temporary, applier: applier, plan: plan)
        try await Blocking.run {
            try checkCancelled()
            try OutputPlacement.place(temporary, at: outputPath, force: options.force)
        }
        return Report(
            generation: plan.generation, txid: applier.resultTxid, commitMs: applier.appliedCommitMs,
            pageCount: applier.pageCount, downloadTime: pipeline.downloadTime, decodeTime: pipeline.decodeTime,
            applyTime: applyTime, integrityCheckTime: options.clock.now - checkStart,
            verifiedChecksum: verifiedChecksum, databaseID: applier.databaseID)
    }

    /// Writes one ready object into the result and removes its download.
    private func apply(_ ready: RestorePipeline.Ready, to applier: PageApplier, plan: RestorePlanner.Plan) async throws
    {
        let path = ready.path
        let key = ready.object.key
        switch ready.object.kind {
        case .snapshot(let entry):
            // The snapshot is written as its checksum is checked on another thread (both read
            // the downloaded file): for a large database that is most of the restore's reading.
            // A checksum failure is reported first: it explains any failure to decompress.
            async let verified = Blocking.run { try ObjectFile.verify(path: path, key: key) }
            var failure: (any Error)?
            do {
                try await Blocking.run { try applier.applySnapshot(path: path, entry: entry, verified: true) }
            } catch {
                failure = error
            }
            _ = try await verified
            if let failure { throw failure }
            try FileSystem.removeIfPresent(path)
        case .segment(let entry):
            let decoded = ready.decoded
            if decoded == nil {
                logger.debug(
                    "segment too large to decode ahead; applying it as it is decoded",
                    metadata: ["object.key": "\(key)"])
            }
            try await Blocking.run {
                if let decoded {
                    try applier.apply(decoded, key: key)
                } else {
                    // Checked before any of its pages is written.
                    _ = try ObjectFile.verify(path: path, key: key)
                    try applier.applySegment(path: path, entry: entry, plan: plan, verified: true)
                }
                try FileSystem.removeIfPresent(path)
            }
        }
    }

    /// Syncs the result, runs the integrity check and compares its database checksum with the
    /// one recorded for the restore point, all at once (the checks only read). The checksum
    /// proves the result is the state the agent saw, which a wrong restore that is still a valid
    /// database would not. Returns the verified checksum, or nil when none was recorded.
    private func verify(
        _ temporary: String, applier: PageApplier, plan: RestorePlanner.Plan
    ) async throws
        -> UInt64?
    {
        async let synced: Void = Blocking.run { try FileSystem.syncFile(temporary) }
        let expected = applier.expectedChecksum
        let pageSize = applier.resultPageSize
        async let checksum = Blocking.run { () throws -> UInt64? in
            guard let expected else { return nil }
            let actual = try PageChecksum.hashFile(at: temporary, pageSize: pageSize).checksum
            guard actual == expected else {
                throw WalshipError(
                    .integrityCheckFailed,
                    "the restored database at txid \(applier.resultTxid) of generation \(plan.generation) does not match the checksum walship recorded for that restore point (\(Hex.pad(expected, 16)), restored \(Hex.pad(actual, 16))): the replica holds a wrong page image; no output was written"
                )
            }
            return actual
        }
        try await Blocking.run { try IntegrityCheck.verify(databaseAt: temporary) }
        try await synced
        return try await checksum
    }

    private static let processorCount = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
