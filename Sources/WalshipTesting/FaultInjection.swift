import Foundation
import Synchronization
import WalshipCore
import WalshipS3

/// A failure to inject into one request.
public enum Fault: Sendable, Equatable {
    /// Answer with this HTTP status and S3 error code (for example 503 "SlowDown") without
    /// contacting the server.
    case status(Int, code: String)
    /// Fail as if the connection dropped (a transient network error).
    case dropConnection
    /// Wait this long, then send the request normally.
    case delay(Duration)

    public static let slowDown = Fault.status(503, code: "SlowDown")
    public static let internalError = Fault.status(500, code: "InternalError")
}

/// Decides which requests fail: by request number (1-based, counted across the wrapped store or
/// transport), the next N requests, or every request with a seeded probability. Replayable: the
/// same plan and seed fail the same request numbers.
public final class FaultPlan: Sendable {
    private struct State {
        var requests = 0
        var scheduled: [Int: Fault] = [:]
        var failNext: [Fault] = []
        var rate = 0.0
        var randomFaults: [Fault] = []
        var generator = SeededGenerator(seed: 1)
        var injected = 0
        var operations: [String: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Injects `fault` into request number `request` (1-based).
    public func inject(_ fault: Fault, atRequest request: Int) {
        state.withLock { $0.scheduled[request] = fault }
    }

    /// Injects `fault` into each of the next `count` requests.
    public func failNext(_ count: Int, with fault: Fault) {
        state.withLock { $0.failNext += Array(repeating: fault, count: count) }
    }

    /// Injects one of `faults` into each request with probability `rate`, seeded.
    public func failRandomly(rate: Double, faults: [Fault], seed: UInt64) {
        state.withLock {
            $0.rate = rate
            $0.randomFaults = faults
            $0.generator = SeededGenerator(seed: seed)
        }
    }

    /// Stops injecting.
    public func clear() {
        state.withLock {
            $0.scheduled = [:]
            $0.failNext = []
            $0.rate = 0
        }
    }

    /// Requests seen so far.
    public var requests: Int { state.withLock { $0.requests } }
    /// Faults injected so far.
    public var injected: Int { state.withLock { $0.injected } }
    /// Requests seen per operation (HTTP method or store call name).
    public var operations: [String: Int] { state.withLock { $0.operations } }

    /// Counts a request and returns the fault to inject into it, if any.
    func next(operation: String) -> Fault? {
        state.withLock { state in
            state.requests += 1
            state.operations[operation, default: 0] += 1
            var fault: Fault?
            if let scheduled = state.scheduled.removeValue(forKey: state.requests) {
                fault = scheduled
            } else if !state.failNext.isEmpty {
                fault = state.failNext.removeFirst()
            } else if state.rate > 0, !state.randomFaults.isEmpty,
                Double.random(in: 0..<1, using: &state.generator) < state.rate
            {
                fault = state.randomFaults.randomElement(using: &state.generator)
            }
            if let fault, fault != .delay(.zero) { state.injected += 1 }
            return fault
        }
    }
}

/// An `HTTPTransport` that injects faults from a plan before passing requests on, so the S3
/// client's own retries, error mapping and cleanup are exercised.
public struct FaultInjectingTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let plan: FaultPlan

    public init(base: any HTTPTransport, plan: FaultPlan) {
        self.base = base
        self.plan = plan
    }

    public func send(_ request: HTTPRequest, sink: HTTPResponseSink) async throws -> HTTPResponse {
        switch plan.next(operation: request.method) {
        case .status(let status, let code)?:
            let body =
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>injected fault</Message></Error>"
            return HTTPResponse(status: status, headers: [:], body: Array(body.utf8), bodyBytes: Int64(body.utf8.count))
        case .dropConnection?:
            throw WalshipError(.storeUnavailable, "injected connection drop", isTransient: true)
        case .delay(let duration)?:
            try await Task.sleep(for: duration)
            return try await base.send(request, sink: sink)
        case nil:
            return try await base.send(request, sink: sink)
        }
    }
}

/// An `ObjectStore` that counts every call by operation and injects faults from a plan: the
/// wrapper later tests put around any store (also to prove that an idle agent sends nothing).
public struct FaultInjectingObjectStore: ObjectStore {
    public let base: any ObjectStore
    public let plan: FaultPlan

    public init(base: any ObjectStore, plan: FaultPlan = FaultPlan()) {
        self.base = base
        self.plan = plan
    }

    public var location: String { base.location }
    public var identity: String { base.identity }
    public var supportsConditionalPut: Bool { base.supportsConditionalPut }
    public func keepsOldVersions() async -> Bool? { await base.keepsOldVersions() }

    private func before(_ operation: String) async throws {
        switch plan.next(operation: operation) {
        case .status(let status, let code)?:
            throw WalshipError(
                .storeUnavailable, "injected HTTP \(status) \(code) on \(operation)",
                isTransient: status >= 500 || status == 429)
        case .dropConnection?:
            throw WalshipError(.storeUnavailable, "injected connection drop on \(operation)", isTransient: true)
        case .delay(let duration)?:
            try await Task.sleep(for: duration)
        case nil:
            break
        }
    }

    public func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool) async throws {
        try await before("put")
        try await base.put(key, body: body, ifNoneMatch: ifNoneMatch)
    }

    public func put(
        _ key: String, body: ObjectBody, ifNoneMatch: Bool, uploadLog: (any MultipartUploadLog)?
    ) async throws {
        try await before("put")
        try await base.put(key, body: body, ifNoneMatch: ifNoneMatch, uploadLog: uploadLog)
    }

    public func abortMultipartUpload(key: String, uploadID: String) async throws {
        try await before("abort")
        try await base.abortMultipartUpload(key: key, uploadID: uploadID)
    }

    public func get(_ key: String, range: Range<Int64>?) async throws -> [UInt8] {
        try await before("get")
        return try await base.get(key, range: range)
    }

    public func download(_ key: String, to path: String) async throws -> Int64 {
        try await before("download")
        return try await base.download(key, to: path)
    }

    public func head(_ key: String) async throws -> ObjectInfo {
        try await before("head")
        return try await base.head(key)
    }

    public func delete(_ key: String) async throws {
        try await before("delete")
        try await base.delete(key)
    }

    public func delete(_ keys: [String]) async throws -> [DeleteFailure] {
        try await before("deleteBatch")
        return try await base.delete(keys)
    }

    public func listPage(
        prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int
    ) async throws
        -> ObjectListPage
    {
        try await before("list")
        return try await base.listPage(
            prefix: prefix, startAfter: startAfter, continuationToken: continuationToken, maxKeys: maxKeys)
    }
}

/// A small deterministic random number generator (SplitMix64) for replayable fault plans and
/// workloads.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
