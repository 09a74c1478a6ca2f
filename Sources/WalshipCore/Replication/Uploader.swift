import Logging

/// Uploads spooled objects in order, each written once under a key derived from its header,
/// with `If-None-Match: *` where the store supports it. A failed upload is retried with capped
/// exponential backoff without ever blocking the WAL reader; the object stays in the spool until
/// the store confirms it.
struct Uploader {
    let store: any ObjectStore
    let layout: ReplicaLayout
    let spool: Spool
    let logger: Logger
    var metrics: ReplicationMetrics?

    /// Uploads the oldest spooled object; returns false when the spool is empty.
    func uploadNext() async throws -> Bool {
        guard let item = spool.pending.first else { return false }
        let header = try ObjectFile.readHeader(path: item.path, key: item.path)
        let key = layout.key(for: header)
        do {
            try await store.put(key, body: .file(path: item.path), ifNoneMatch: true)
        } catch let error as WalshipError where error.code == .objectExists {
            // An earlier run uploaded it and stopped before removing it from the spool.
            let existing = try await store.head(key)
            guard existing.size == item.size else {
                throw WalshipError(
                    .objectExists,
                    "object '\(key)' already exists with a different size: is another agent replicating to this replica?"
                )
            }
        }
        spool.remove(item)
        metrics?.record { values in
            values.bytesUploaded += UInt64(item.size)
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
        logger.debug("object uploaded", metadata: ["object.key": "\(key)", "object.bytes": "\(item.size)"])
        return true
    }

    /// Uploads until the spool is empty, retrying failures with backoff, until `deadline`, or
    /// until the store has failed every attempt for `failingFor` (`--once`: a store that is down
    /// must not keep a cron job running forever). Returns whether the spool is empty.
    func drain(
        until deadline: ContinuousClock.Instant?, giveUpFailingFor failingFor: Duration? = nil,
        isStopped: () -> Bool = { false }
    ) async -> Bool {
        var failures = 0
        var failingSince: ContinuousClock.Instant?
        while !spool.pending.isEmpty {
            if let deadline, ContinuousClock.now >= deadline { return false }
            // Task.sleep returns at once in a cancelled task: retrying would spin.
            if Task.isCancelled { return false }
            do {
                _ = try await uploadNext()
                failures = 0
                failingSince = nil
            } catch {
                failures += 1
                metrics?.record { $0.uploadFailures += 1 }
                let now = ContinuousClock.now
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
                if let deadline, ContinuousClock.now + pause >= deadline { return false }
                if isStopped() && deadline == nil { return false }
                try? await Task.sleep(for: pause)
            }
        }
        return true
    }
}
