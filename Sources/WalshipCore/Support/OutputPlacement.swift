/// Puts a finished temporary file at its final path, atomically and without clobbering anything
/// the operator did not ask to replace. Shared by `walship backup` and `walship restore`.
///
/// Invariants: the output path never holds a partial file (the temporary file is written beside
/// it and renamed); without `force` an existing output, or a stale `-wal`/`-journal` beside it
/// that SQLite would replay into the new file, stops the operation; with `force` the output is
/// replaced only while no process has it open, and its stale `-wal`/`-shm`/`-journal` files are
/// removed before the rename so no reader can pair the new file with an old WAL.
public enum OutputPlacement {
    /// Checks, before any work starts, that `destination` may be written.
    public static func checkDestination(_ destination: String, force: Bool) throws {
        let directory = FileSystem.directory(of: destination)
        guard FileSystem.isDirectory(directory) else {
            throw WalshipError(.localIO, "write output '\(destination)': directory '\(directory)' does not exist")
        }
        guard FileSystem.isWritableDirectory(directory) else {
            throw WalshipError(.localIO, "write output '\(destination)': directory '\(directory)' is not writable")
        }
        if FileSystem.isDirectory(destination) {
            throw WalshipError(.usage, "write output '\(destination)': it is a directory, expected a file path")
        }
        if force {
            try checkNotOpen(destination)
        } else {
            if FileSystem.exists(destination) {
                throw WalshipError(
                    .outputExists, "output '\(destination)' already exists; pass --force to replace it")
            }
            for suffix in ["-wal", "-journal"] where FileSystem.exists(destination + suffix) {
                throw WalshipError(
                    .outputExists,
                    "output '\(destination)' has a stale '\(destination + suffix)' that SQLite would apply to the new file; remove it or pass --force"
                )
            }
        }
    }

    /// Moves the finished `temporary` file to `destination` and makes the rename durable.
    public static func place(_ temporary: String, at destination: String, force: Bool) throws {
        if force {
            try checkNotOpen(destination)
            for suffix in ["-wal", "-shm", "-journal"] {
                try FileSystem.removeIfPresent(destination + suffix)
            }
            try FileSystem.rename(temporary, to: destination)
        } else {
            try FileSystem.renameNoReplace(temporary, to: destination)
        }
        try FileSystem.syncDirectory(FileSystem.directory(of: destination))
    }

    static func checkNotOpen(_ destination: String) throws {
        let holders = OpenFileProbe.holders(of: destination)
        if !holders.isEmpty {
            let list = holders.map(String.init).joined(separator: ", ")
            throw WalshipError(
                .outputExists,
                "output '\(destination)' is open by process \(list); stop it before replacing the file")
        }
    }
}
