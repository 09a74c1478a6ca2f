import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An `ObjectStore` in a local directory (`file:///dir` replicas): each key is a file under the
/// root directory.
///
/// Writes are atomic and durable: a temporary file in the key's directory, fsync, rename (or a
/// hard link for conditional writes, which fails instead of replacing), then fsync of the
/// directory. Temporary files start with `.` and are never listed. Keys that would leave the
/// root (`..`, empty segments, a leading `/`) are refused.
public struct FileObjectStore: ObjectStore {
    public let root: String

    /// A store rooted at `root`, which must exist (a missing root is `bucketNotFound`, like a
    /// missing bucket), unless `create` makes it.
    public init(root: String, create: Bool = false) throws {
        self.root = FileSystem.absolute(root)
        if create { try FileSystem.createDirectories(self.root) }
    }

    public var location: String { "file://\(root)" }
    public var identity: String { "file://\(FileSystem.canonical(root))" }
    public var supportsConditionalPut: Bool { true }

    func path(for key: String) throws -> String {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
            !segments.contains(where: { $0.hasPrefix(".") })
        else {
            throw WalshipError(.usage, "object key '\(key)' is not valid in a file replica")
        }
        return root + "/" + key
    }

    func requireRoot() throws {
        guard FileSystem.isDirectory(root) else {
            throw WalshipError(.bucketNotFound, "replica directory '\(root)' does not exist")
        }
    }

    public func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool) async throws {
        let path = try path(for: key)
        try requireRoot()
        try await Blocking.run {
            let directory = FileSystem.directory(of: path)
            try FileSystem.createDirectories(directory)
            let temporary = "\(directory)/.\(FileSystem.fileName(of: path)).tmp-\(UInt64.random(in: 0...UInt64.max))"
            defer { try? FileSystem.removeIfPresent(temporary) }
            let file = try LocalFile.create(temporary)
            switch body {
            case .bytes(let bytes):
                try file.write(bytes)
            case .file(let source):
                try Self.copyContents(of: source, into: file)
            }
            try file.sync()
            try file.close()
            if ifNoneMatch {
                do {
                    try FileSystem.renameNoReplace(temporary, to: path)
                } catch let error as WalshipError where error.code == .outputExists {
                    throw WalshipError(.objectExists, "object '\(key)' already exists in '\(location)'")
                }
            } else {
                try FileSystem.rename(temporary, to: path)
            }
            try FileSystem.syncDirectory(directory)
        }
    }

    static func copyContents(of source: String, into file: LocalFile) throws {
        let input = try LocalFile.openForReading(source)
        defer { try? input.close() }
        try file.appendContents(of: input)
    }

    func openExisting(_ key: String) throws -> LocalFile {
        let path = try path(for: key)
        try requireRoot()
        do {
            return try LocalFile.openForReading(path)
        } catch {
            if !FileSystem.isRegularFile(path) {
                throw WalshipError(.objectNotFound, "object '\(key)' does not exist in '\(location)'")
            }
            throw error
        }
    }

    public func get(_ key: String, range: Range<Int64>?) async throws -> [UInt8] {
        let file = try openExisting(key)
        return try await Blocking.run {
            let size = try file.size()
            let start = range?.lowerBound ?? 0
            let end = min(range?.upperBound ?? size, size)
            guard start >= 0, start <= end else {
                throw WalshipError(.usage, "range \(start)..<\(end) is outside object '\(key)' of \(size) bytes")
            }
            return try file.read(count: Int(end - start), at: start)
        }
    }

    public func download(_ key: String, to path: String) async throws -> Int64 {
        let source = try self.path(for: key)
        _ = try openExisting(key)
        return try await Blocking.run {
            let output = try LocalFile.create(path)
            do {
                try Self.copyContents(of: source, into: output)
                let size = try output.size()
                try output.close()
                return size
            } catch {
                try? FileSystem.removeIfPresent(path)
                throw error
            }
        }
    }

    public func head(_ key: String) async throws -> ObjectInfo {
        let path = try path(for: key)
        try requireRoot()
        guard let info = FileSystem.status(path), (info.st_mode & S_IFMT) == S_IFREG else {
            throw WalshipError(.objectNotFound, "object '\(key)' does not exist in '\(location)'")
        }
        return ObjectInfo(key: key, size: Int64(info.st_size), lastModified: Self.modificationDate(info))
    }

    static func modificationDate(_ info: stat) -> Date {
        Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
    }

    public func delete(_ key: String) async throws {
        let path = try path(for: key)
        try requireRoot()
        try FileSystem.removeIfPresent(path)
        // Remove directories the delete emptied, up to the root (rmdir fails on non-empty ones).
        var directory = FileSystem.directory(of: path)
        while directory.count > root.count, rmdir(directory) == 0 {
            directory = FileSystem.directory(of: directory)
        }
    }

    public func delete(_ keys: [String]) async throws -> [DeleteFailure] {
        var failures: [DeleteFailure] = []
        for key in keys {
            do {
                try await delete(key)
            } catch let error as WalshipError {
                failures.append(DeleteFailure(key: key, code: error.code.rawValue, message: error.message))
            }
        }
        return failures
    }

    public func listPage(
        prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int
    ) async throws
        -> ObjectListPage
    {
        try requireRoot()
        let after = [startAfter, continuationToken].compactMap { $0 }.max(by: Self.byteOrder)
        let limit = max(1, min(maxKeys, 1000))
        return try await Blocking.run {
            // Walk only the deepest directory the prefix names.
            let directoryPrefix = prefix.contains("/") ? String(prefix[...prefix.lastIndex(of: "/")!]) : ""
            var keys: [String] = []
            Self.collectKeys(in: root + "/" + directoryPrefix, keyPrefix: directoryPrefix, into: &keys)
            keys = keys.filter { $0.hasPrefix(prefix) && (after == nil || Self.byteOrder(after!, $0)) }
            keys.sort(by: Self.byteOrder)
            let page = keys.prefix(limit)
            var objects: [ObjectInfo] = []
            for key in page {
                guard let info = FileSystem.status(root + "/" + key) else { continue }
                objects.append(
                    ObjectInfo(key: key, size: Int64(info.st_size), lastModified: Self.modificationDate(info)))
            }
            let token = keys.count > limit ? page.last : nil
            return ObjectListPage(objects: objects, continuationToken: token)
        }
    }

    /// S3 lists keys in UTF-8 byte order.
    static func byteOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func collectKeys(in directory: String, keyPrefix: String, into keys: inout [String]) {
        for name in FileSystem.entries(of: directory) ?? [] where !name.hasPrefix(".") {
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if FileSystem.isDirectory(path) {
                collectKeys(in: path, keyPrefix: keyPrefix + name + "/", into: &keys)
            } else if FileSystem.isRegularFile(path) {
                keys.append(keyPrefix + name)
            }
        }
    }
}
