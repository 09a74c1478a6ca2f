import Logging

/// Takes snapshots (DESIGN.md section 3): a dedicated connection holds one read transaction for
/// the whole online-backup copy; `fromTxid` is the follower's last published txid before that
/// transaction began and `usableTxid` its last published txid after a WAL read that began
/// after it. The copy equals the database at some txid in between, so replaying segments from
/// `fromTxid + 1` gives the exact state for any target at or after `usableTxid`.
///
/// The copy goes to a temporary file in the spool directory, is compressed into the snapshot
/// object there, and is queued for upload.
struct Snapshotter {
    /// What the snapshot belongs to.
    struct Request: Sendable {
        var generation: GenerationID
        var reason: ObjectHeader.GenerationReason
        var predecessorGeneration: GenerationID?
        var predecessorTxid: UInt64
        var databaseID: DatabaseID
    }

    let databasePath: String
    let progress: FollowerProgress
    let spool: Spool
    let codec: CompressionCodec
    let stepPages: Int32
    let pollInterval: Duration
    let logger: Logger
    let now: @Sendable () -> UInt64

    /// Takes a snapshot and adds it to the spool, after the segments that reach its
    /// `usableTxid` (so the store never holds a snapshot its segments cannot complete); returns
    /// its header, or nil when the follower moved to another generation meanwhile (the snapshot
    /// would not belong to its lineage) or the gate closed.
    func take(_ request: Request, gate: SnapshotGate, isCancelled: @escaping () -> Bool) throws -> ObjectHeader? {
        guard progress.generation == request.generation, gate.enter() else { return nil }
        let copyPath = spool.temporaryPath("snapshot") + ".db"
        defer { FileSystem.removeDatabaseFiles(copyPath) }
        let stop = { isCancelled() || gate.isClosed }
        let copied: (fromTxid: UInt64, usableTxid: UInt64, pageSize: Int, pages: Int, takenMs: UInt64)
        do {
            defer { gate.leave() }
            copied = try copy(to: copyPath, isCancelled: stop)
        }
        guard progress.generation == request.generation else { return nil }
        // The copy's page hashes: its checksum for the header, and for a loop whose page-hash
        // table is partial, the hashes that complete it.
        let offering = progress.wantsPageHashes == request.generation
        let hashesPath = offering ? spool.temporaryPath("snapshot-hashes") : nil
        let hashed: (checksum: UInt64, pages: UInt32)
        do {
            hashed = try PageChecksum.hashFile(at: copyPath, pageSize: copied.pageSize, writingHashesTo: hashesPath)
        } catch {
            if let hashesPath { try? FileSystem.removeIfPresent(hashesPath) }
            throw error
        }
        if let hashesPath {
            progress.offer(
                .init(
                    generation: request.generation, fromTxid: copied.fromTxid, usableTxid: copied.usableTxid,
                    path: hashesPath, pages: hashed.pages))
        }
        let objectPath = spool.temporaryPath("snapshot-object")
        defer { try? FileSystem.removeIfPresent(objectPath) }
        var template = ObjectHeader(
            kind: .snapshot, codec: codec, reason: request.reason, pageSize: UInt32(copied.pageSize),
            generation: request.generation.value, firstTxid: copied.fromTxid, lastTxid: copied.usableTxid,
            firstMs: copied.takenMs, lastMs: copied.takenMs,
            predecessorGeneration: request.predecessorGeneration?.value ?? 0, predecessorTxid: request.predecessorTxid,
            databasePages: UInt32(copied.pages))
        template.databaseID = request.databaseID
        template.databaseChecksum = hashed.checksum
        let header = try ObjectFile.write(to: objectPath, header: template) { emit in
            let input = try LocalFile.openForReading(copyPath)
            defer { try? input.close() }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                // A stop that gave up on this snapshot (shutdown-timeout) ends the compression too.
                if isCancelled() { throw WalshipError(.cancelled, "snapshot of '\(self.databasePath)' cancelled") }
                let count = try input.read(into: buffer)
                if count == 0 { break }
                try emit(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            }
        }
        try FileSystem.syncFile(objectPath)
        // The segments through usableTxid go into the spool before the snapshot, so the store
        // never holds a snapshot its segments cannot complete.
        progress.requestCut()
        let deadline = progress.clock.now + pollInterval * 100 + .seconds(10)
        while progress.sealedThrough < copied.usableTxid {
            if stop() || progress.generation != request.generation { return nil }
            if progress.clock.now > deadline {
                throw WalshipError(.internal, "snapshot of '\(databasePath)' gave up waiting for its segments")
            }
            OnlineBackup.sleep(.milliseconds(5))
        }
        try spool.add(objectPath)
        logger.info(
            "snapshot taken",
            metadata: [
                "db.path": "\(databasePath)", "generation": "\(request.generation)",
                "snapshot.from_txid": "\(copied.fromTxid)",
                "snapshot.usable_txid": "\(copied.usableTxid)", "snapshot.pages": "\(copied.pages)",
                "snapshot.bytes": "\(header.payloadSize)",
            ])
        return header
    }

    /// Copies the database under one read transaction; returns the txids around it. The
    /// connection is closed when this returns.
    private func copy(
        to copyPath: String, isCancelled: @escaping () -> Bool
    ) throws -> (
        fromTxid: UInt64, usableTxid: UInt64, pageSize: Int, pages: Int, takenMs: UInt64
    ) {
        let fromTxid = progress.lastTxid
        let connection = try Connection.openObserver(path: databasePath)
        defer { connection.close() }
        try connection.beginReadTransaction()
        let pageSize = try connection.pageSize()
        // A poll that starts after this moment began after our read transaction did.
        let pollMark = progress.nextPoll
        var usableTxid: UInt64?
        let deadline = progress.clock.now + pollInterval * 100 + .seconds(10)
        while usableTxid == nil {
            if isCancelled() { throw WalshipError(.cancelled, "snapshot of '\(databasePath)' cancelled") }
            if progress.clock.now > deadline {
                throw WalshipError(.internal, "snapshot of '\(databasePath)' gave up waiting for the WAL reader")
            }
            usableTxid = progress.lastTxid(afterPoll: pollMark)
            if usableTxid == nil { OnlineBackup.sleep(.milliseconds(10)) }
        }
        let takenMs = now()
        let copy = try Connection(path: copyPath, mode: [.readWrite, .create])
        defer { copy.close() }
        try copy.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
        let result = try OnlineBackup(stepPages: stepPages).copy(from: connection, to: copy, isCancelled: isCancelled)
        try connection.rollback()
        return (fromTxid, usableTxid!, pageSize, result.pageCount, takenMs)
    }
}
