import CCurl
import Foundation
import Synchronization
import WalshipCore

/// An `HTTPTransport` on libcurl's easy interface: a fixed pool of worker threads, each with one
/// reusable easy handle, so connections are kept alive between requests and blocking transfers
/// never run on the Swift cooperative thread pool.
///
/// Bodies stream from memory or a file range through curl's read callback and responses stream
/// to memory or a file through its write callback, so memory stays bounded by the buffers curl
/// uses, whatever the object size. TLS uses the system CA store unless `caBundle` names a file;
/// proxies come from the environment variables libcurl itself reads (`http_proxy`,
/// `https_proxy`, `no_proxy`).
public final class CurlTransport: HTTPTransport, @unchecked Sendable {  // State is the job queue, guarded by its lock.
    public struct Options: Sendable {
        public var workers = 8
        public var connectTimeoutSeconds = 10
        /// A transfer slower than 1 byte/s for this long is aborted (and retried by the caller).
        public var lowSpeedTimeSeconds = 60
        /// A CA bundle file (`AWS_CA_BUNDLE` / `SSL_CERT_FILE`); nil uses the system store.
        public var caBundle: String?
        /// Bodies of at least this many bytes keep curl's `Expect: 100-continue`, so a server
        /// that refuses the request (403) can say so before the body is sent; smaller bodies are
        /// sent at once (an empty `Expect:` header).
        public var expectContinueThreshold: Int64 = 1 << 20

        public init() {}
    }

    private let options: Options
    private let queue = JobQueue()

    private static let globalInit: CURLcode = walship_curl_global_init()

    public init(options: Options = Options()) {
        _ = Self.globalInit
        self.options = options
        for index in 0..<max(1, options.workers) {
            let thread = Thread { [queue, options] in
                let worker = CurlWorker(options: options)
                while let job = queue.next() {
                    worker.perform(job)
                }
            }
            thread.name = "walship-curl-\(index)"
            thread.start()
        }
    }

    deinit { queue.close() }

    public func send(_ request: HTTPRequest, sink: HTTPResponseSink) async throws -> HTTPResponse {
        let cancelled = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                queue.push(Job(request: request, sink: sink, cancelled: cancelled, continuation: continuation))
            }
        } onCancel: {
            cancelled.set()
        }
    }
}

/// Set when the awaiting task is cancelled; the transfer's progress callback then aborts it.
final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// One request waiting for a worker.
struct Job: Sendable {
    let request: HTTPRequest
    let sink: HTTPResponseSink
    let cancelled: CancelFlag
    let continuation: CheckedContinuation<HTTPResponse, any Error>
}

/// A FIFO of jobs that worker threads block on.
final class JobQueue: @unchecked Sendable {  // Every access holds `condition`.
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var head = 0
    private var closed = false

    func push(_ job: Job) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The next job, or nil once the queue is closed.
    func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count && !closed { condition.wait() }
        if head == jobs.count { return nil }
        let job = jobs[head]
        head += 1
        if head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
