/// The agent's start-up decision of DESIGN.md section 3 ("Continuity"), as pure values: continue
/// the saved generation, or start a new one and why. `ReplicationLoop.start` gathers the facts
/// (the saved state, one LIST, the spool, the database file's identity, then what the WAL and the
/// file show) and acts on the outcome; the rules themselves live here, where unit tests cover
/// every row without files.
///
/// The decision comes in three steps, because each one needs more reading than the one before:
/// `beforeReading` (state, inventory and spool only), `afterWAL` (the page size and whether the
/// WAL still bridges the break, catch-up included), `byContent` (the database file compared with
/// the page hashes of the last shipped state).
enum ContinuityDecision: Equatable {
    /// `beforeReading`: the saved generation may resume from here, if the WAL or the database
    /// file proves it (`afterWAL`, `byContent`).
    case resume(Resume)
    /// `afterWAL`: the WAL cannot prove continuity; compare the database file (`byContent`).
    case checkContent
    /// `afterWAL`, `byContent`: continuity is proven; the generation continues.
    case continueGeneration
    /// Start a new generation with a snapshot.
    case newGeneration(ObjectHeader.GenerationReason, String)

    /// Where the saved generation resumes: after `newestSegment` (its newest segment in the
    /// spool or the store), or at the state's `baseTxid` when it has shipped none.
    struct Resume: Equatable {
        var state: ReplicaState
        var newestSegment: ObjectHeader?
        var txid: UInt64
    }

    /// What is known before the database and its WAL are read.
    struct Facts {
        /// The state directory's `state.json`, if any.
        var saved: ReplicaState?
        /// The replica this agent writes to now (`Replica.location`).
        var replicaLocation: String
        /// Set when `walship restore` wrote this database (`RestoredMarker`).
        var restored: RestoredMarker?
        var inventory: ReplicaInventory
        /// Headers of objects still in the spool.
        var spooled: [ObjectHeader]
        /// The header of the newest segment of the saved generation in the store, if any.
        var newestStoredSegment: ObjectHeader?
        /// Whether the uploader abandoned the saved generation (an object conflicted).
        var savedGenerationAbandoned: Bool
        /// The database file's (device, inode) now.
        var databaseFile: FileIdentity?

        /// The highest txid anything names: the store, the spool or the saved state. A new
        /// generation continues after it; a resumed one must be exactly there.
        var lastTxid: UInt64 {
            max(inventory.maxTxid, spooled.map(\.lastTxid).max() ?? 0, usableSaved?.baseTxid ?? 0)
        }

        /// The saved state, unless it was written for another replica (a changed URL: it says
        /// nothing about this one).
        var usableSaved: ReplicaState? {
            guard let saved, saved.replica == nil || saved.replica == replicaLocation else { return nil }
            return saved
        }
    }

    /// The rules that need no file: a restored database, no state, an abandoned or forked
    /// generation, a newer generation in the replica, objects past this agent's position, and a
    /// replaced database file each start a new generation; otherwise the saved one may resume,
    /// subject to `afterWAL`.
    static func beforeReading(_ facts: Facts) -> ContinuityDecision {
        if let restored = facts.restored {
            return .newGeneration(
                .restored, "the database was restored from generation \(restored.generation) at txid \(restored.txid)")
        }
        guard let saved = facts.usableSaved else {
            return .newGeneration(
                facts.inventory.isEmpty ? .firstStart : .continuityLost, "no local state for this replica")
        }
        if facts.savedGenerationAbandoned {
            return .newGeneration(
                .objectConflict, "an object of this agent's generation conflicts with one in the store")
        }
        if let branch = RestorePlanner(inventory: facts.inventory).overlap(in: saved.generation) {
            // Two agents continued this generation (a copied state directory, two pods of a
            // rolling deploy): its restore points from the branch on are ambiguous, and going on
            // would only add to them.
            return .newGeneration(
                .forked,
                "generation \(saved.generation) was continued by two agents from txid \(branch) (a copied state directory, or two pods at once)"
            )
        }
        if let pair = Lineage(inventory: facts.inventory).concurrentPairs.first(where: {
            $0.0 == saved.generation || $0.1 == saved.generation
        }) {
            // Another agent shipped the same txids at the same time in another generation (a
            // racing agent that moved on to a generation of its own, a restored copy replicated
            // while the original ran): the two are a fork, and going on would extend it.
            let other = pair.0 == saved.generation ? pair.1 : pair.0
            return .newGeneration(
                .forked,
                "generations \(saved.generation) and \(other) shipped the same txids at the same time (two agents at once, or a restored copy replicated while the original ran)"
            )
        }
        if let newestStored = facts.inventory.generations.last, newestStored > saved.generation {
            return .newGeneration(.continuityLost, "the replica has a newer generation than this agent's state")
        }
        let candidates =
            facts.spooled.filter { $0.kind == .segment && $0.generation == saved.generation.value }
            + [facts.newestStoredSegment].compactMap { $0 }
        let newest = candidates.max { $0.lastTxid < $1.lastTxid }
        let resumeTxid = newest?.lastTxid ?? saved.baseTxid
        guard resumeTxid == facts.lastTxid else {
            return .newGeneration(.continuityLost, "objects with later txids than this agent's position exist")
        }
        guard facts.databaseFile == saved.databaseIdentity else {
            return .newGeneration(.databaseReplaced, "the database file is not the one this generation replicated")
        }
        return .resume(Resume(state: saved, newestSegment: newest, txid: resumeTxid))
    }

    /// What the WAL shows, once opened at the resumed position.
    enum WALEvidence: Equatable {
        /// The WAL still holds the shipped position and everything after it was read, with the
        /// same salts at both ends of the read (continuity proven).
        case bridges
        /// Anything else: the WAL was restarted, deleted, shortened, or changed during catch-up.
        case broken
    }

    /// Whether the WAL still holds the position the agent shipped last (`WALFollower.walStillHolds`
    /// reads `header` and, past frame 0, the header of the frame at `position.frame`, nil when the
    /// WAL is shorter): the same salts and page size, and at that frame a commit frame with the
    /// same salts and cumulative checksum (at frame 0, the header's checksum). Equal salts with
    /// another checksum mean the WAL was rewritten from a restart the agent never saw.
    static func walHolds(
        _ position: WALCursor, header: WALFormat.Header?, frameAtPosition: WALFormat.FrameHeader?
    ) -> Bool {
        guard position != .noWAL(pageSize: position.pageSize), let header,
            header.salt1 == position.salt1, header.salt2 == position.salt2, header.pageSize == position.pageSize
        else { return false }
        if position.frame == 0 { return header.checksum == position.checksum }
        guard let frame = frameAtPosition else { return false }
        return frame.salt1 == position.salt1 && frame.salt2 == position.salt2 && frame.checksum == position.checksum
            && frame.isCommit
    }

    /// Whether a catch-up read bridges the break: the WAL header read after it still shows the
    /// salts the read ended with. The first read transaction after a break may sit on slot 0,
    /// which does not stop a restart; no WAL at both ends proves nothing about what happened in
    /// between.
    static func catchUpBridges(endedWith salts: (UInt32, UInt32), headerAfter: WALFormat.Header?) -> Bool {
        guard let headerAfter else { return false }
        return (headerAfter.salt1, headerAfter.salt2) == salts
    }

    /// The next step once the WAL was read: a new generation when the page size changed while the
    /// agent was away (the WAL is then not read at all), else continue when `wal` (reading it at
    /// the shipped position, catch-up included) proves it, else ask the database file.
    static func afterWAL(
        recordedPageSize: Int, databasePageSize: Int, wal: () throws -> WALEvidence
    ) rethrows -> ContinuityDecision {
        if databasePageSize != recordedPageSize {
            return .newGeneration(
                .pageSizeChanged,
                "the page size changed from \(recordedPageSize) to \(databasePageSize) while walship was not watching")
        }
        return try wal() == .bridges ? .continueGeneration : .checkContent
    }

    /// What comparing the database file with the page hashes of the last shipped state showed
    /// (`ReplicationLoop.continueByContent`).
    enum ContentEvidence: Equatable {
        /// The file is exactly that state, or its changes were shipped as one transaction read
        /// from the file.
        case continued
        /// The file changed and is not a sound database.
        case changed(String)
        /// No page hashes, or a WAL that changed under the read: nothing proven.
        case unproven
    }

    /// The last step: the database file decides.
    static func byContent(_ evidence: ContentEvidence) -> ContinuityDecision {
        switch evidence {
        case .continued: return .continueGeneration
        case .changed(let why): return .newGeneration(.databaseChanged, why)
        case .unproven:
            return .newGeneration(
                .continuityLost,
                "the WAL no longer holds the position this agent shipped last, and the database file cannot stand in for it (there are no page hashes to compare with, or the WAL changed while the agent read the database)"
            )
        }
    }
}
