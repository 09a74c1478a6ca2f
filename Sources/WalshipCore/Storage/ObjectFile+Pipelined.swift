import Crypto
import Foundation
import Synchronization

extension ObjectFile {
    /// Payloads at least this large (decompressed) are read by `readPipelined` on two threads.
    static let pipelineThreshold: UInt64 = 4 << 20

    /// `read`, with the reading, SHA-256 and decompression on a thread of their own, handing
    /// decompressed chunks to `consume` on the calling thread through a bounded queue
    /// (`ChunkQueue`: 4 chunks of 1 MiB), so that a restore applies pages while the next bytes
    /// decompress. Same checks and errors as `read`; small payloads are read in line.
    @discardableResult
    public static func readPipelined(
        path: String, key: String, expect: (ObjectHeader) throws -> Void = { _ in },
        consume: (ObjectHeader, UnsafeRawBufferPointer) throws -> Void
    ) throws -> ObjectHeader {
        let header = try readHeader(path: path, key: key)
        guard header.uncompressedSize >= pipelineThreshold else {
            return try read(path: path, key: key, expect: expect, consume: consume)
        }
        try expect(header)
        let queue = ChunkQueue(chunkSize: 1 << 20, depth: 4)
        let producer = Thread {
            do {
                try read(path: path, key: key) { _, bytes in try queue.append(bytes) }
                try queue.finish()
            } catch {
                queue.fail(error)
            }
        }
        producer.name = "walship-decompress"
        producer.stackSize = 1 << 20
        producer.start()
        do {
            while let chunk = try queue.next() {
                defer { queue.recycle(chunk) }
                try chunk.withUnsafeBytes { try consume(header, $0) }
            }
        } catch {
            queue.cancel()
            queue.waitForProducer()
            throw error
        }
        queue.waitForProducer()
        return header
    }
}

/// A bounded single-producer, single-consumer queue of byte chunks with recycled buffers.
/// The producer copies into the current chunk and blocks while `depth` full chunks wait; the
/// consumer takes them in order. An error on either side ends both.
final class ChunkQueue: @unchecked Sendable {  // Every field is guarded by `condition`.
    final class Chunk: @unchecked Sendable {  // Owned by one side of one queue at a time.
        let storage: UnsafeMutableRawBufferPointer
        var count = 0

        init(size: Int) { storage = .allocate(byteCount: size, alignment: 16) }
        deinit { storage.deallocate() }

        func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
            try body(UnsafeRawBufferPointer(rebasing: storage[..<count]))
        }
    }

    private let condition = NSCondition()
    private let chunkSize: Int
    private let depth: Int
    private var full: [Chunk] = []
    private var free: [Chunk] = []
    private var filling: Chunk?
    private var allocated = 0
    private var finished = false
    private var producerDone = false
    private var cancelled = false
    private var failure: (any Error)?

    /// Chunks of finished queues, reused by the next (fresh 1 MiB allocations are page faults).
    private static let pool = Mutex<[Chunk]>([])

    init(chunkSize: Int, depth: Int) {
        self.chunkSize = chunkSize
        self.depth = depth
    }

    deinit {
        let chunks = free + full + (filling.map { [$0] } ?? [])
        Self.pool.withLock { pool in
            for chunk in chunks where pool.count < 2 * (depth + 1) && chunk.storage.count == chunkSize {
                pool.append(chunk)
            }
        }
    }

    /// Producer: copies `bytes` into chunks, handing each on when full.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var bytes = bytes
        while !bytes.isEmpty {
            let chunk = try currentChunk()
            let take = min(chunkSize - chunk.count, bytes.count)
            UnsafeMutableRawBufferPointer(rebasing: chunk.storage[chunk.count..<(chunk.count + take)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<take]))
            chunk.count += take
            bytes = UnsafeRawBufferPointer(rebasing: bytes[take...])
            if chunk.count == chunkSize { try hand(chunk) }
        }
    }

    private func currentChunk() throws -> Chunk {
        if let filling { return filling }
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && allocated >= depth + 1 && !cancelled { condition.wait() }
        if cancelled { throw CancellationError() }
        let chunk: Chunk
        if let reused = free.popLast() {
            chunk = reused
        } else {
            chunk = Self.pool.withLock { $0.popLast() } ?? Chunk(size: chunkSize)
            allocated += 1
        }
        chunk.count = 0
        filling = chunk
        return chunk
    }

    private func hand(_ chunk: Chunk) throws {
        condition.lock()
        defer { condition.unlock() }
        while full.count >= depth && !cancelled { condition.wait() }
        if cancelled { throw CancellationError() }
        full.append(chunk)
        filling = nil
        condition.broadcast()
    }

    /// Producer: the stream ended without error.
    func finish() throws {
        if let filling, filling.count > 0 { try hand(filling) }
        condition.lock()
        finished = true
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Producer: the stream failed; the consumer rethrows `error`.
    func fail(_ error: any Error) {
        condition.lock()
        if failure == nil && !cancelled { failure = error }
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: the next chunk in order, nil at the end; rethrows the producer's error (the
    /// caller then discards everything it consumed, as after a failed `ObjectFile.read`).
    func next() throws -> Chunk? {
        condition.lock()
        defer { condition.unlock() }
        while full.isEmpty && !finished && failure == nil { condition.wait() }
        if let failure { throw failure }
        if full.isEmpty { return nil }
        return full.removeFirst()
    }

    /// Consumer: gives a chunk back for reuse.
    func recycle(_ chunk: Chunk) {
        condition.lock()
        free.append(chunk)
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: stops the producer (it throws at its next hand-over).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Returns once the producer thread has finished or failed.
    func waitForProducer() {
        condition.lock()
        while !producerDone { condition.wait() }
        condition.unlock()
    }
}
