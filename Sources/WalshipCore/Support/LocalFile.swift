#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An open file descriptor with positioned reads and writes, `fsync`, and errors that name the
/// file. Not shared between threads without external ordering.
public final class LocalFile: @unchecked Sendable {  // The descriptor is only an Int32; callers order use.
    public let path: String
    public private(set) var descriptor: Int32

    /// Opens `path` with `open(2)` flags (`O_RDONLY`, `O_WRONLY | O_CREAT | O_EXCL`, ...).
    public init(path: String, flags: Int32, mode: mode_t = 0o644) throws {
        self.path = path
        let fd = open(path, flags | O_CLOEXEC, mode)
        if fd < 0 {
            throw LocalFile.error("open", path, errno)
        }
        descriptor = fd
    }

    deinit {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
    }

    /// Opens an existing file for reading.
    public static func openForReading(_ path: String) throws -> LocalFile {
        try LocalFile(path: path, flags: O_RDONLY)
    }

    /// Creates a new file that must not exist yet.
    public static func create(_ path: String, mode: mode_t = 0o644) throws -> LocalFile {
        try LocalFile(path: path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
    }

    public func close() throws {
        guard descriptor >= 0 else { return }
        let rc = Glibc.close(descriptor)
        descriptor = -1
        if rc != 0 { throw LocalFile.error("close", path, errno) }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns the number read (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        try transfer("read", count: buffer.count, untilEndOfFile: true) { done in
            pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        }
    }

    /// Reads up to `count` bytes at `offset`.
    public func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { raw in try read(into: raw, at: offset) }
        bytes.removeLast(count - n)
        return bytes
    }

    /// Reads sequentially from the current position; returns 0 at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw LocalFile.error("read", path, errno)
            }
            return n
        }
    }

    /// Writes all of `bytes` at the current position.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try transfer("write", count: bytes.count) { done in
            Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in try write(raw) }
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        try transfer("write", count: bytes.count) { done in
            pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
        }
    }

    /// Repeats `call` (given the bytes moved so far, one `read`/`write` system call's result) until
    /// `count` bytes are moved, or with `untilEndOfFile` until a call moves none; retries EINTR,
    /// throws other errors as `operation`. Returns the bytes moved.
    @discardableResult
    private func transfer(
        _ operation: String, count: Int, untilEndOfFile: Bool = false, _ call: (Int) -> Int
    ) throws -> Int {
        var done = 0
        while done < count {
            let n = call(done)
            if n < 0 {
                if errno == EINTR { continue }
                throw LocalFile.error(operation, path, errno)
            }
            if n == 0 && untilEndOfFile { break }
            done += n
        }
        return done
    }

    /// Appends everything from `source`'s current position to its end at this file's current
    /// position. The kernel copies (`sendfile`) where it can; where that is not supported, a
    /// read/write loop does. Returns the bytes copied.
    @discardableResult
    public func appendContents(of source: LocalFile) throws -> Int64 {
        var copied: Int64 = 0
        while true {
            let n = sendfile(descriptor, source.descriptor, nil, 1 << 30)
            if n > 0 {
                copied += Int64(n)
                continue
            }
            if n == 0 { return copied }
            if errno == EINTR { continue }
            // Not supported between these files: copy by hand.
            guard copied == 0, [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP, EBADF].contains(errno) else {
                throw LocalFile.error("copy to", path, errno)
            }
            break
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if count == 0 { return copied }
            try buffer.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            copied += Int64(count)
        }
    }

    public func truncate(to size: Int64) throws {
        if ftruncate(descriptor, off_t(size)) != 0 { throw LocalFile.error("truncate", path, errno) }
    }

    /// Flushes the file's data and metadata to stable storage.
    public func sync() throws {
        if fsync(descriptor) != 0 { throw LocalFile.error("fsync", path, errno) }
    }

    /// The file's size in bytes.
    public func size() throws -> Int64 {
        var info = stat()
        if fstat(descriptor, &info) != 0 { throw LocalFile.error("stat", path, errno) }
        return Int64(info.st_size)
    }

    /// Builds the error for a failed system call on `path`: out of space and permission problems
    /// are `localIO`; a missing file is `localIO` too, with the reason spelled out.
    static func error(_ operation: String, _ path: String, _ code: Int32) -> WalshipError {
        WalshipError(
            .localIO, "\(operation) '\(path)' failed: \(FileSystem.describe(errno: code))", systemError: code)
    }
}
