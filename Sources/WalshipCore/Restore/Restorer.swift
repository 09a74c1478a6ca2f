import Logging

#if canImport(Glibc)
    import Glibc
#endif

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
        let objects: [(key: String, size: Int64)] =
            [(plan.snapshot.key, plan.snapshot.size)] + plan.segments.map { ($0.key, $0.size) }
        let totalBytes = objects.reduce(0) { $0 + $1.size }
        let clock = ContinuousClock()
        var downloadTime = Duration.zero
        var decodeTime = Duration.zero
        var applyTime = Duration.zero
        let store = replica.store
        let applier = try PageApplier(path: temporary)

        // Three stages overlap: downloads (with checksum verification) run up to `parallel`
        // objects ahead of the one being applied; segments within `decodeAhead` of it are
        // decoded (decompressed and coalesced, `SegmentDecoder`) on other threads; one thread
        // applies them in order. At most `decodeAhead` decoded segments wait in memory.
        let decodeAhead = max(1, min(options.parallel, Self.processorCount, 3))
        let fromTxid = plan.snapshot.fromTxid
        var done = 0
        var bytesDone: Int64 = 0
        try await withThrowingTaskGroup(of: Step.self) { group in
            var next = 0
            func scheduleDownload() {
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
                    // Checksums are checked as segments are decoded, and beside the writing of
                    // the snapshot (a failure then removes what was written).
                    return .downloaded(index: index, path: path, took: ContinuousClock.now - start)
                }
            }
            var downloaded: [Int: String] = [:]
            var decoded: [Int: SegmentDecoder.Decoded?] = [:]
            var decodeNext = 1  // Object 0 is the snapshot, written as it is read.
            func scheduleDecodes() {
                while decodeNext < objects.count, decodeNext <= done + decodeAhead,
                    let path = downloaded[decodeNext]
                {
                    let index = decodeNext
                    let entry = plan.segments[index - 1]
                    decodeNext += 1
                    group.addTask {
                        let start = ContinuousClock.now
                        let result = try await Blocking.run { () throws -> SegmentDecoder.Decoded? in
                            do {
                                return try SegmentDecoder.decode(
                                    path: path, entry: entry, plan: plan, fromTxid: fromTxid, verified: false,
                                    limitBytes: PageWrites.aheadLimitBytes,
                                    overflow: { _ in throw DecodeAheadOverflow() })
                            } catch is DecodeAheadOverflow {
                                return nil  // Too large to hold: applied as it is decoded.
                            } catch let error as WalshipError where error.code == .objectCorrupt {
                                // A corrupt payload fails its checksum: say that rather than
                                // how decoding it failed.
                                _ = try ObjectFile.verify(path: path, key: entry.key)
                                throw error
                            }
                        }
                        return .decoded(index: index, result, took: ContinuousClock.now - start)
                    }
                }
            }
            for _ in 0..<max(1, options.parallel) { scheduleDownload() }
            while done < objects.count {
                scheduleDecodes()
                guard let step = try await group.next() else { break }
                switch step {
                case .downloaded(let index, let path, let took):
                    downloaded[index] = path
                    downloadTime += took
                case .decoded(let index, let result, let took):
                    decoded[index] = .some(result)
                    decodeTime += took
                }
                // Apply every object that is ready, in order.
                while done < objects.count, let path = downloaded[done], done == 0 || decoded[done] != nil {
                    try checkCancelled()
                    let applyStart = clock.now
                    let index = done
                    let ahead = decoded.removeValue(forKey: index) ?? nil
                    if index > 0 && ahead == nil {
                        logger.debug(
                            "segment too large to decode ahead; applying it as it is decoded",
                            metadata: ["object.key": "\(objects[index].key)"])
                    }
                    if index == 0 {
                        // The snapshot is written as its checksum is checked on another thread
                        // (both read the downloaded file): for a large database that is most of
                        // the restore's reading. A checksum failure is reported first: it
                        // explains any failure to decompress.
                        let key = objects[0].key
                        async let verified = Blocking.run { try ObjectFile.verify(path: path, key: key) }
                        var failure: (any Error)?
                        do {
                            try await Blocking.run {
                                try applier.applySnapshot(path: path, entry: plan.snapshot, verified: true)
                            }
                        } catch {
                            failure = error
                        }
                        _ = try await verified
                        if let failure { throw failure }
                        try FileSystem.removeIfPresent(path)
                    } else {
                        try await Blocking.run {
                            if let ahead {
                                try applier.apply(ahead, key: plan.segments[index - 1].key)
                            } else {
                                // Checked before any of its pages is written.
                                _ = try ObjectFile.verify(path: path, key: objects[index].key)
                                try applier.applySegment(
                                    path: path, entry: plan.segments[index - 1], plan: plan, verified: true)
                            }
                            try FileSystem.removeIfPresent(path)
                        }
                    }
                    downloaded[index] = nil
                    applyTime += clock.now - applyStart
                    bytesDone += objects[index].size
                    done += 1
                    progress(
                        Progress(
                            objectsDone: done, objectsTotal: objects.count, bytesDone: bytesDone, bytesTotal: totalBytes
                        ))
                    scheduleDownload()
                    scheduleDecodes()
                    if applier.reachedTarget {
                        group.cancelAll()
                        done = objects.count
                    }
                }
            }
        }
        try applier.finish(plan: plan)
        let checkStart = clock.now
        // The fsync, the integrity check and the checksum overlap (the checks only read); the
        // file goes into place only once all are done. The checksum proves the result is the
        // state the agent saw, which a wrong restore that is still a valid database would not.
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
        let verifiedChecksum = try await checksum
        try await Blocking.run {
            try checkCancelled()
            try OutputPlacement.place(temporary, at: outputPath, force: options.force)
        }
        return Report(
            generation: plan.generation, txid: applier.resultTxid, commitMs: applier.appliedCommitMs,
            pageCount: applier.pageCount, downloadTime: downloadTime, decodeTime: decodeTime,
            applyTime: applyTime,
            integrityCheckTime: clock.now - checkStart, verifiedChecksum: verifiedChecksum,
            databaseID: applier.databaseID)
    }

    private enum Step: Sendable {
        case downloaded(index: Int, path: String, took: Duration)
        /// nil: the segment's writes passed `PageWrites.aheadLimitBytes`; it is applied as it is decoded.
        case decoded(index: Int, SegmentDecoder.Decoded?, took: Duration)
    }

    private struct DecodeAheadOverflow: Error {}

    private static let processorCount = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
