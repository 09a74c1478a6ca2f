import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Sealed objects waiting for upload, as files `<seq>.obj` in `<state-dir>/<db>/spool`, uploaded
/// in sequence order. The spool survives a crash: at start the agent uploads what it finds.
/// Its size is bounded by `spool-max-bytes`; `isFull` tells the reader to stop and end its read
/// chain rather than let the spool (or the app's WAL) grow without bound.
///
/// A generation whose chain cannot go on in the store (an object's key already holds another
/// object there, which is never overwritten) is abandoned: its waiting objects are removed, any
/// added later are dropped, and the WAL loop starts a new generation. Abandoned generations are
/// remembered in `<spool>/abandoned`, so a restart never resumes one.
public final class Spool: Sendable {
    public struct Item: Sendable, Equatable {
        public var sequence: UInt64
        public var path: String
        public var size: Int64
    }

    public let directory: String
    public let maxBytes: Int64
    private let state: Mutex<(next: UInt64, items: [Item])>
    private let abandoned: Mutex<[GenerationID]>
    private let signal: AsyncStream<Void>.Continuation
    let signals: AsyncStream<Void>

    public init(directory: String, maxBytes: Int64) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        try FileSystem.createDirectories(directory, mode: 0o700)
        var items: [Item] = []
        for name in FileSystem.entries(of: directory) ?? [] {
            if name.hasSuffix(".obj"), let sequence = UInt64(name.dropLast(4)) {
                let path = "\(directory)/\(name)"
                items.append(Item(sequence: sequence, path: path, size: FileSystem.size(path) ?? 0))
            } else if name.hasSuffix(".tmp") || name.hasSuffix(".frames") || name.hasSuffix(".db") {
                _ = unlink("\(directory)/\(name)")
            }
        }
        items.sort { $0.sequence < $1.sequence }
        state = Mutex((next: (items.last?.sequence ?? 0) + 1, items: items))
        let recorded = (try? FileSystem.contents(of: "\(directory)/abandoned")).flatMap { $0 }.map {
            String(decoding: $0, as: UTF8.self)
        }
        abandoned = Mutex((recorded ?? "").split(separator: "\n").compactMap { GenerationID(hex: $0) })
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A path in the spool directory for building a new object (renamed in by `add`).
    public func temporaryPath(_ purpose: String) -> String {
        "\(directory)/\(purpose)-\(UInt64.random(in: 0...UInt64.max)).tmp"
    }

    /// Moves a finished object file into the queue.
    @discardableResult
    public func add(_ path: String) throws -> Item {
        let item = try state.withLock { state throws -> Item in
            let item = Item(
                sequence: state.next, path: "\(directory)/\(String(state.next).leftPadded(20)).obj",
                size: FileSystem.size(path) ?? 0)
            try FileSystem.rename(path, to: item.path)
            state.next += 1
            state.items.append(item)
            return item
        }
        try FileSystem.syncDirectory(directory)
        signal.yield()
        return item
    }

    /// Waiting objects, oldest first.
    public var pending: [Item] { state.withLock { $0.items } }

    public var bytes: Int64 { state.withLock { $0.items.reduce(0) { $0 + $1.size } } }

    public var isFull: Bool { bytes >= maxBytes }

    /// Removes an uploaded object.
    public func remove(_ item: Item) {
        state.withLock { $0.items.removeAll { $0.sequence == item.sequence } }
        _ = unlink(item.path)
    }

    /// Wakes a waiting uploader (also used to stop it).
    public func wake() { signal.yield() }

    // MARK: Abandoned generations

    /// Whether `generation` was abandoned (its objects are no longer uploaded).
    public func isAbandoned(_ generation: GenerationID) -> Bool {
        abandoned.withLock { $0.contains(generation) }
    }

    /// Abandons `generation`: removes its waiting objects and remembers it (the newest 32 are
    /// kept). Returns how many objects were removed.
    @discardableResult
    public func abandon(_ generation: GenerationID) throws -> Int {
        let list = abandoned.withLock { list -> [GenerationID] in
            if !list.contains(generation) { list.append(generation) }
            list = Array(list.suffix(32))
            return list
        }
        try FileSystem.writeAtomically(Array(list.map { "\($0)\n" }.joined().utf8), to: "\(directory)/abandoned")
        var removed = 0
        for item in pending {
            guard let header = try? ObjectFile.readHeader(path: item.path, key: item.path),
                header.generation == generation.value
            else { continue }
            remove(item)
            removed += 1
        }
        return removed
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
