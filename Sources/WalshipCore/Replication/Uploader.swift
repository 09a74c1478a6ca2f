import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Uploads spooled objects in order, each written once under a key derived from its header,
/// with `If-None-Match: *` where the store supports it. A failed upload is retried with capped
/// exponential backoff without ever blocking the WAL reader; the object stays in the spool until
/// the store confirms it.
///
/// An object is never replaced (DESIGN.md section 4). When its key already exists (a request of
/// an earlier run landed after that run was killed, or another writer), the stored object is
/// downloaded and compared byte for byte: the same bytes mean the upload already happened; any
/// other content (another object, or a corrupt or truncated one) ends the object's generation
/// (`Spool.abandon`): its waiting objects are dropped and the WAL loop starts a new generation.
/// The size a HEAD request reports is never taken as proof of either: a proxy can recompute it
/// (as the length of the empty HEAD body), which once stalled replication forever (issue 13).
struct Uploader {
    let store: any ObjectStore
    let layout: ReplicaLayout
    let spool: Spool
    let logger: Logger
    var metrics: ReplicationMetrics?
    /// Where multipart uploads are recorded until they finish.
    var uploadLog: (any MultipartUploadLog)?
    /// The clock that deadlines and backoff pauses are measured and slept on.
    var clock: any MonotonicClock = ContinuousClock()

    /// What the store holds under a key that already existed.
    enum Existing: Equatable {
        /// The same bytes as the spooled object.
        case same
        /// Something else; the text says what.
        case different(String)
    }

    /// Uploads the oldest spooled object; returns false when the spool is empty.
    func uploadNext() async throws -> Bool {
        guard let item = spool.pending.first else { return false }
        let header: ObjectHeader
        do {
            header = try ObjectFile.readHeader(path: item.path, key: item.path)
        } catch {
            // A spool file this agent cannot read again (local corruption) can never be
            // uploaded: retrying it would stall every object behind it.
            logger.error(
                "a spooled object is unreadable; dropping it",
                metadata: ["spool.path": "\(item.path)", "error": "\(error)"])
            spool.remove(item)
            metrics?.record { $0.objectConflicts += 1 }
            return true
        }
        let generation = GenerationID(header.generation)
        if spool.isAbandoned(generation) {
            spool.remove(item)
            return true
        }
        let key = layout.key(for: header)
        do {
            try await store.put(key, body: .file(path: item.path), ifNoneMatch: true, uploadLog: uploadLog)
        } catch let error as WalshipError where error.code == .objectExists {
            switch try await existing(key, matches: item) {
            case .same:
                logger.info(
                    "object was already in the store (an earlier run's upload landed late)",
                    metadata: ["object.key": "\(key)"])
            case .different(let why):
                let dropped = try spool.abandon(generation)
                metrics?.record { $0.objectConflicts += 1 }
                logger.error(
                    "object key already holds another object, which is never overwritten; ending its generation",
                    metadata: [
                        "object.key": "\(key)", "generation": "\(generation)", "detail": "\(why)",
                        "spool.dropped_objects": "\(dropped)",
                    ])
                return true
            }
        }
        spool.remove(item)
        record(uploaded: header, key: key, bytes: item.size)
        logger.debug("object uploaded", metadata: ["object.key": "\(key)", "object.bytes": "\(item.size)"])
        return true
    }

    /// Downloads what the store holds under `key` next to the spool and compares it with the
    /// spooled object byte for byte.
    func existing(_ key: String, matches item: Spool.Item) async throws -> Existing {
        let path = spool.temporaryPath("existing")
        defer { try? FileSystem.removeIfPresent(path) }
        let size: Int64
        do {
            size = try await store.download(key, to: path)
        } catch let error as WalshipError where error.code == .objectNotFound {
            // Gone again (deleted by hand between the two requests): the next attempt uploads it.
            throw WalshipError(
                .storeUnavailable, "object '\(key)' existed and then did not; retrying its upload", cause: error,
                isTransient: true)
        }
        let ours = item.size
        let intact = (try? ObjectFile.verify(path: path, key: key)) != nil
        if size != ours {
            return .different(
                intact
                    ? "it holds another object of \(size) bytes (this agent's has \(ours))"
                    : "it holds \(size) bytes that are not an intact walship object (this agent's has \(ours))")
        }
        guard try FileSystem.sameContents(path, item.path) else {
            return .different(
                intact
                    ? "it holds another object of the same size" : "it holds a corrupt object of the same size")
        }
        return .same
    }

    private func record(uploaded header: ObjectHeader, key: String, bytes: Int64) {
        metrics?.recordStored(key: key, size: bytes)
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        metrics?.record { values in
            values.lastUploadMs = now
            values.bytesUploaded += UInt64(bytes)
            switch header.kind {
            case .segment:
                values.segmentsUploaded += 1
                if header.lastTxid > values.shippedTxid {
                    values.shippedTxid = header.lastTxid
                    values.shippedCommitMs = header.lastMs
                }
                values.pendingSinceMs = header.lastTxid >= values.observedTxid ? nil : header.lastMs
            case .snapshot:
                // A new generation's first state has a txid of its own, held by its snapshot.
                values.shippedTxid = max(values.shippedTxid, header.firstTxid)
                values.snapshotsUploaded += 1
                values.lastSnapshotMs = max(values.lastSnapshotMs, header.firstMs)
            }
        }
    }

    /// Uploads until the spool is empty, retrying failures with backoff, until `deadline`, or
    /// until the store has failed every attempt for `failingFor` (`--once`: a store that is down
    /// must not keep a cron job running forever). A backoff wait ends at once when `stop` reaches
    /// `level` (and the drain then returns). Returns whether the spool is empty.
    func drain(
        until deadline: ContinuousClock.Instant?, giveUpFailingFor failingFor: Duration? = nil,
        stop: StopSignal? = nil, level: StopSignal.Level = .stop
    ) async -> Bool {
        var failures = 0
        var failingSince: ContinuousClock.Instant?
        while !spool.pending.isEmpty {
            if let deadline, clock.now >= deadline { return false }
            // Task.sleep returns at once in a cancelled task: retrying would spin.
            if Task.isCancelled { return false }
            do {
                _ = try await uploadNext()
                failures = 0
                failingSince = nil
            } catch {
                failures += 1
                metrics?.record { $0.uploadFailures += 1 }
                let now = clock.now
                if failingSince == nil { failingSince = now }
                var pause = Duration.milliseconds(min(30_000, 250 << min(failures, 7)))
                if let failingFor, let failingSince {
                    let left = failingSince + failingFor - now
                    if left <= .zero {
                        logger.error(
                            "the store failed every upload for \(failingFor); giving up",
                            metadata: ["error": "\(error)", "spool.objects": "\(spool.pending.count)"])
                        return false
                    }
                    pause = min(pause, left)
                }
                logger.error(
                    "upload failed; the object stays in the spool and is retried",
                    metadata: ["error": "\(error)", "attempt": "\(failures)", "spool.bytes": "\(spool.bytes)"])
                if let deadline, clock.now + pause >= deadline { return false }
                guard let stop else {
                    try? await clock.sleep(for: pause)
                    continue
                }
                await stop.sleep(for: pause, on: clock, wakingOn: level)
                if level == .stop ? stop.isStopped : stop.isImmediate { return false }
            }
        }
        return true
    }
}
