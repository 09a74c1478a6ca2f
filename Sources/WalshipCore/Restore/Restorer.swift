import Logging

/// Carries out a `RestorePlanner.Plan`: downloads the snapshot and segments (up to `parallel`
/// objects ahead, to temporary files), verifies every object's checksum, header and predecessor
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
        public var applyTime: Duration
        public var integrityCheckTime: Duration
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
        let objects: [(key: String, size: Int64)] =
            [(plan.snapshot.key, plan.snapshot.size)] + plan.segments.map { ($0.key, $0.size) }
        let totalBytes = objects.reduce(0) { $0 + $1.size }
        let clock = ContinuousClock()
        var downloadTime = Duration.zero
        var applyTime = Duration.zero
        let store = replica.store
        let applier = try PageApplier(path: temporary)

        var done = 0
        var bytesDone: Int64 = 0
        try await withThrowingTaskGroup(of: (Int, String, Duration).self) { group in
            var next = 0
            func schedule() {
                guard next < objects.count else { return }
                let index = next
                let object = objects[index]
                next += 1
                group.addTask {
                    let path = "\(downloads)/\(index).obj"
                    let start = ContinuousClock.now
                    do {
                        _ = try await store.download(object.key, to: path)
                    } catch let error as WalshipError where error.code == .objectNotFound {
                        throw WalshipError(.objectNotFound, "object '\(object.key)' is missing from the replica")
                    }
                    // The checksum is checked here, beside the downloads, rather than on the
                    // thread that applies pages.
                    _ = try await Blocking.run { try ObjectFile.verify(path: path, key: object.key) }
                    return (index, path, ContinuousClock.now - start)
                }
            }
            for _ in 0..<max(1, options.parallel) { schedule() }
            var ready: [Int: (String, Duration)] = [:]
            while done < objects.count {
                guard let (index, path, took) = try await group.next() else { break }
                ready[index] = (path, took)
                downloadTime += took
                while let (path, _) = ready.removeValue(forKey: done) {
                    try checkCancelled()
                    let applyStart = clock.now
                    let index = done
                    try await Blocking.run {
                        if index == 0 {
                            try applier.applySnapshot(path: path, entry: plan.snapshot, verified: true)
                        } else {
                            try applier.applySegment(
                                path: path, entry: plan.segments[index - 1], plan: plan, verified: true)
                        }
                        try FileSystem.removeIfPresent(path)
                    }
                    applyTime += clock.now - applyStart
                    bytesDone += objects[index].size
                    done += 1
                    progress(
                        Progress(
                            objectsDone: done, objectsTotal: objects.count, bytesDone: bytesDone, bytesTotal: totalBytes
                        ))
                    schedule()
                    if applier.reachedTarget {
                        group.cancelAll()
                        done = objects.count
                        break
                    }
                }
            }
        }
        try applier.finish(plan: plan)
        let checkStart = clock.now
        // The fsync and the integrity check overlap (the check only reads); the file goes into
        // place only once both are done.
        async let synced: Void = Blocking.run { try FileSystem.syncFile(temporary) }
        try await Blocking.run { try IntegrityCheck.verify(databaseAt: temporary) }
        try await synced
        try await Blocking.run {
            try checkCancelled()
            try OutputPlacement.place(temporary, at: outputPath, force: options.force)
        }
        return Report(
            generation: plan.generation, txid: applier.resultTxid, commitMs: applier.appliedCommitMs,
            pageCount: applier.pageCount, downloadTime: downloadTime, applyTime: applyTime,
            integrityCheckTime: clock.now - checkStart)
    }
}
