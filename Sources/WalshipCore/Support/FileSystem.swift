#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Small file-system operations with errors that name the path: existence checks, atomic
/// placement of finished files (rename or no-clobber link), and directory fsync.
public enum FileSystem {
    /// The text of an `errno` value.
    public static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// `stat(2)` of a path, or nil when it does not exist.
    public static func status(_ path: String) -> stat? {
        var info = stat()
        return stat(path, &info) == 0 ? info : nil
    }

    public static func exists(_ path: String) -> Bool {
        status(path) != nil
    }

    public static func isRegularFile(_ path: String) -> Bool {
        guard let info = status(path) else { return false }
        return (info.st_mode & S_IFMT) == S_IFREG
    }

    public static func isDirectory(_ path: String) -> Bool {
        guard let info = status(path) else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The size of a file, or nil when it does not exist.
    public static func size(_ path: String) -> Int64? {
        status(path).map { Int64($0.st_size) }
    }

    /// The directory part of a path ("." for a bare file name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a path.
    public static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `path` made absolute (from the working directory), without `.` and empty components; no
    /// symbolic link resolved, and `..` kept (see `canonical`).
    public static func absolute(_ path: String) -> String {
        var full = path
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buffer, buffer.count) != nil {
                let length = buffer.firstIndex(of: 0) ?? buffer.count
                full = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
            }
        }
        // `..` is kept: after a symbolic link it leads into the link's target's parent, which
        // only the kernel knows (`a/link/../app.db` is not `a/app.db` when `link` points
        // elsewhere). `canonical` resolves it.
        let parts = full.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }

    /// `path` with every symbolic link resolved (`realpath`), so one file has one name however
    /// it is reached (a symlinked data directory, a relative path). A file that does not exist
    /// yet is named through its resolved directory; without that either, the lexical absolute
    /// path.
    public static func canonical(_ path: String) -> String {
        let absolute = absolute(path)
        func resolved(_ path: String) -> String? {
            guard let pointer = realpath(path, nil) else { return nil }
            defer { free(pointer) }
            return String(cString: pointer)
        }
        if let whole = resolved(absolute) { return whole }
        if let parent = resolved(directory(of: absolute)) {
            return (parent == "/" ? "" : parent) + "/" + fileName(of: absolute)
        }
        return absolute
    }

    /// A path beside `path` for a temporary file: same directory (so a rename is atomic), hidden,
    /// and unique to this process and call.
    public static func temporarySibling(of path: String, purpose: String) -> String {
        let directory = directory(of: path)
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return "\(directory)/.\(fileName(of: path)).walship-\(purpose)-\(getpid())-\(suffix)"
    }

    /// Removes a file if it exists; errors other than "does not exist" throw.
    public static func removeIfPresent(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw LocalFile.error("remove", path, errno)
        }
    }

    /// Removes a SQLite database file and its `-wal`, `-shm` and `-journal` companions, ignoring
    /// failures: used to clean up temporary files on error paths.
    public static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            _ = unlink(path + suffix)
        }
    }

    /// Removes the `-wal`, `-shm` and `-journal` files beside a database, ignoring failures.
    public static func removeCompanions(of path: String) {
        for suffix in ["-wal", "-shm", "-journal"] {
            _ = unlink(path + suffix)
        }
    }

    /// Flushes a directory's entries (after creating, renaming or removing files in it).
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw LocalFile.error("open directory", path, errno) }
        defer { _ = close(fd) }
        if fsync(fd) != 0 { throw LocalFile.error("fsync directory", path, errno) }
    }

    /// Flushes a file's contents to stable storage.
    public static func syncFile(_ path: String) throws {
        let file = try LocalFile.openForReading(path)
        try file.sync()
        try file.close()
    }

    /// The whole content of a small file, or nil when it does not exist.
    public static func contents(of path: String) throws -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        return try file.read(count: Int(try file.size()), at: 0)
    }

    /// Bytes available to this user on the file system holding `path`, or nil.
    public static func availableBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Whether two files hold the same bytes (read in 1 MiB chunks).
    public static func sameContents(_ first: String, _ second: String) throws -> Bool {
        let a = try LocalFile.openForReading(first)
        defer { try? a.close() }
        let b = try LocalFile.openForReading(second)
        defer { try? b.close() }
        guard try a.size() == b.size() else { return false }
        var offset: Int64 = 0
        while true {
            let left = try a.read(count: 1 << 20, at: offset)
            let right = try b.read(count: 1 << 20, at: offset)
            guard left == right else { return false }
            if left.isEmpty { return true }
            offset += Int64(left.count)
        }
    }

    /// Writes a small file atomically: a temporary sibling, fsync, rename, directory fsync.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let temporary = "\(path).\(UInt32.random(in: 0...UInt32.max)).tmp"
        do {
            let file = try LocalFile.create(temporary, mode: mode)
            defer { try? file.close() }
            try file.write(bytes)
            try file.sync()
            try file.close()
            try rename(temporary, to: path)
        } catch {
            _ = unlink(temporary)
            throw error
        }
        try syncDirectory(directory(of: path))
    }

    /// Moves `source` to `destination` atomically, replacing any existing file.
    public static func rename(_ source: String, to destination: String) throws {
        if Glibc.rename(source, destination) != 0 {
            throw LocalFile.error("rename to '\(destination)' from", source, errno)
        }
    }

    /// Moves `source` to `destination` atomically only if `destination` does not exist: a hard link
    /// (which fails with EEXIST instead of replacing) followed by removing `source`. Throws
    /// `outputExists` when `destination` appeared in the meantime.
    public static func renameNoReplace(_ source: String, to destination: String) throws {
        if link(source, destination) != 0 {
            let code = errno
            if code == EEXIST {
                throw WalshipError(.outputExists, "output '\(destination)' already exists")
            }
            if code == EPERM || code == ENOTSUP || code == EOPNOTSUPP || code == EXDEV {
                // File systems without hard links: check, then rename (a narrow race remains).
                if exists(destination) {
                    throw WalshipError(.outputExists, "output '\(destination)' already exists")
                }
                try rename(source, to: destination)
                return
            }
            throw LocalFile.error("link to '\(destination)' from", source, code)
        }
        if unlink(source) != 0 { throw LocalFile.error("remove", source, errno) }
    }

    /// Creates a directory and its missing parents with `mode`.
    public static func createDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let parent = directory(of: path)
        if parent != path && parent != "." && parent != "/" {
            try createDirectories(parent, mode: mode)
        }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw LocalFile.error("create directory", path, errno)
        }
    }

    /// Whether the current process may write files in `directory`.
    public static func isWritableDirectory(_ directory: String) -> Bool {
        access(directory, W_OK | X_OK) == 0
    }
}

extension FileSystem {
    /// The names in a directory, without "." and ".."; nil when it cannot be read.
    public static func entries(of directory: String) -> [String]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a directory and everything in it, ignoring failures (temporary directories).
    public static func removeTree(_ path: String) {
        guard let names = entries(of: path) else {
            _ = unlink(path)
            return
        }
        for name in names {
            let child = path + "/" + name
            if isDirectory(child) { removeTree(child) } else { _ = unlink(child) }
        }
        _ = rmdir(path)
    }
}
