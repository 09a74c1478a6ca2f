import Logging

/// `walship backup`: a one-shot online backup of a live database to a local file.
///
/// The copy is written to a temporary file beside the destination, fsynced, checked with
/// `PRAGMA integrity_check`, optionally compressed, and only then renamed into place, so the
/// destination never holds a partial or unverified file. The source is read through one read
/// transaction (see `OnlineBackup`), so the copy is the database at a single transaction boundary.
public struct FileBackup: Sendable {
    public struct Options: Sendable {
        public var stepPages: Int32 = 1024
        public var sleepBetweenSteps: Duration = .zero
        /// `.none` writes a database file; `.gzip` or `.zstd` write a compressed one.
        public var codec: CompressionCodec = .none
        public var force = false

        public init() {}
    }

    /// What a finished backup did, with the time of each phase.
    public struct Report: Sendable {
        public var pageCount: Int
        public var pageSize: Int
        public var journalMode: String
        public var copyTime: Duration
        public var fsyncTime: Duration
        public var integrityCheckTime: Duration
        public var compressTime: Duration
        public var outputBytes: Int64
        public var databaseBytes: Int64 { Int64(pageCount) * Int64(pageSize) }
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Backs up `source` to `destination`. Blocks; run it off the cooperative thread pool.
    public func run(
        source: String, destination: String,
        isCancelled: () -> Bool = { false },
        progress: (OnlineBackup.Progress) -> Void = { _ in }
    ) throws -> Report {
        let sourcePath = FileSystem.absolute(source)
        let destinationPath = FileSystem.absolute(destination)
        try Self.checkNotSource(sourcePath, destinationPath, name: source)
        try OutputPlacement.checkDestination(destinationPath, force: options.force)

        let connection = try Connection.openObserver(path: sourcePath)
        defer { connection.close() }
        let journalMode = try connection.checkedJournalMode()
        if journalMode != "wal" {
            logger.warning(
                "backup of a rollback-journal database: its read transaction blocks the app's commits for the whole copy",
                metadata: ["db.path": "\(sourcePath)", "db.journal_mode": "\(journalMode)"])
        }
        try checkSpace(for: connection, sourcePath: sourcePath, destinationPath: destinationPath)
        let clock = ContinuousClock()
        let temporary = FileSystem.temporarySibling(of: destinationPath, purpose: "backup")
        var compressed: String?
        defer {
            FileSystem.removeDatabaseFiles(temporary)
            if let compressed { try? FileSystem.removeIfPresent(compressed) }
        }

        // 1. Copy under one read transaction.
        let copyStart = clock.now
        let result: OnlineBackup.Result
        do {
            try connection.beginReadTransaction()
            let target = try Connection(path: temporary, mode: [.readWrite, .create])
            defer { target.close() }
            // The temporary file is private until renamed, and is fsynced below: no journal, no
            // per-transaction syncs.
            try target.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")
            let engine = OnlineBackup(stepPages: options.stepPages, sleepBetweenSteps: options.sleepBetweenSteps)
            result = try engine.copy(from: connection, to: target, isCancelled: isCancelled, progress: progress)
            try connection.rollback()
        } catch let error as SQLiteError {
            throw Self.classify(error, source: sourcePath)
        }
        connection.close()
        let copyTime = clock.now - copyStart

        // 2. Make the copy durable.
        let syncStart = clock.now
        try FileSystem.syncFile(temporary)
        let fsyncTime = clock.now - syncStart

        // 3. Prove it opens and is intact.
        let checkStart = clock.now
        try IntegrityCheck.verify(databaseAt: temporary)
        let integrityCheckTime = clock.now - checkStart

        // 4. Optionally compress, then place atomically.
        var finished = temporary
        var compressTime = Duration.zero
        if options.codec != .none {
            let compressStart = clock.now
            let target = FileSystem.temporarySibling(of: destinationPath, purpose: "compress")
            compressed = target
            _ = try Compression.compressFile(at: temporary, to: target, codec: options.codec)
            try FileSystem.syncFile(target)
            finished = target
            compressTime = clock.now - compressStart
        }
        if isCancelled() { throw WalshipError(.cancelled, "backup of '\(sourcePath)' cancelled") }
        let outputBytes = FileSystem.size(finished) ?? 0
        try OutputPlacement.place(finished, at: destinationPath, force: options.force)
        return Report(
            pageCount: result.pageCount, pageSize: result.pageSize, journalMode: journalMode,
            copyTime: copyTime, fsyncTime: fsyncTime, integrityCheckTime: integrityCheckTime,
            compressTime: compressTime, outputBytes: outputBytes)
    }

    /// The destination must not be the source itself (by path, or by inode through another path).
    private static func checkNotSource(_ sourcePath: String, _ destinationPath: String, name: String) throws {
        let sameFile =
            FileSystem.status(sourcePath).map { source in
                FileSystem.status(destinationPath).map { $0.st_ino == source.st_ino && $0.st_dev == source.st_dev }
                    ?? false
            } ?? false
        if sourcePath == destinationPath || sameFile {
            throw WalshipError(.usage, "backup '\(name)': the destination is the source itself")
        }
    }

    /// The copy is written uncompressed beside DEST first (and, compressed, DEST's own file
    /// exists beside it until the copy is removed): say so up front rather than fail late.
    private func checkSpace(for connection: Connection, sourcePath: String, destinationPath: String) throws {
        let databaseBytes = max(
            try connection.databaseFileSize(),
            (try connection.scalarInt("PRAGMA page_count") ?? 0) * Int64(try connection.pageSize()))
        let destinationDirectory = FileSystem.directory(of: destinationPath)
        if let available = FileSystem.availableBytes(destinationDirectory), available < databaseBytes + (1 << 20) {
            throw WalshipError(
                .localIO,
                "backup of '\(sourcePath)' needs about \(ValueParsing.formatBytes(databaseBytes)) free in '\(destinationDirectory)' for the uncompressed copy\(options.codec == .none ? "" : " (and room for the compressed file beside it)"), but the disk has \(ValueParsing.formatBytes(available)) free",
                systemError: 28)
        }
    }

    static func classify(_ error: SQLiteError, source: String) -> WalshipError {
        if error.isNotADatabase {
            return WalshipError(.databaseUnusable, "read database '\(source)': the file is not a SQLite database")
        }
        if error.isCorrupt {
            return WalshipError(.databaseUnusable, "read database '\(source)': the database is corrupt", cause: error)
        }
        let primary = error.primaryCode
        if primary == 10 /* SQLITE_IOERR */ || primary == 13 /* SQLITE_FULL */ || primary == 14 /* SQLITE_CANTOPEN */ {
            return WalshipError(.localIO, "backup of '\(source)' failed", cause: error)
        }
        return WalshipError(.databaseUnusable, "backup of '\(source)' failed", cause: error)
    }
}
