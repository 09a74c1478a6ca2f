import Crypto
import Foundation
import Testing
import WalshipCore
import WalshipS3
import WalshipTesting

/// The stores the contract runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case file
    case s3

    var testDescription: String { rawValue }
}

/// A store under test with whatever it needs to stop afterwards.
final class StoreFixture: Sendable {
    let store: any ObjectStore
    let server: S3TestServer?
    let directory: TemporaryDirectory?

    static func make(_ kind: StoreKind, transport: (any HTTPTransport)? = nil) async throws -> StoreFixture {
        switch kind {
        case .file:
            let directory = try TemporaryDirectory(prefix: "walship-store")
            return StoreFixture(store: try FileObjectStore(root: directory.path), server: nil, directory: directory)
        case .s3:
            let server = try await S3TestServer.start()
            let store = try server.makeStore(transport: transport) { configuration in
                configuration.partSize = 5 << 20
                // rclone serve s3 ignores If-None-Match; the header is still sent (see S3RequestTests).
                configuration.conditionalPut = false
                configuration.retry = RetryPolicy(
                    maxAttempts: 4, baseDelay: .milliseconds(10), maxDelay: .milliseconds(50))
            }
            return StoreFixture(store: store, server: server, directory: nil)
        }
    }

    private init(store: any ObjectStore, server: S3TestServer?, directory: TemporaryDirectory?) {
        self.store = store
        self.server = server
        self.directory = directory
    }

    func stop() {
        server?.stop()
        directory?.remove()
    }
}

func sha256(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        var word = generator.next()
        for _ in 0..<8 where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return bytes
}

/// One contract, run against the local-directory store and a real `rclone serve s3` on
/// 127.0.0.1 with SigV4 enforced. Serialized: each S3 case starts a server.
@Suite("ObjectStore contract", .serialized)
struct ObjectStoreContractTests {
    @Test("empty, small and keyed-with-spaces-and-non-ASCII objects round-trip", arguments: StoreKind.allCases)
    func smallObjectsRoundTrip(kind: StoreKind) async throws {
        let fixture = try await StoreFixture.make(kind)
        defer { fixture.stop() }
        let store = fixture.store
        try await store.put("a/empty", body: .bytes([]))
        #expect(try await store.get("a/empty") == [])
        #expect(try await store.head("a/empty").size == 0)

        let small = Array("hello, walship".utf8)
        try await store.put("a/small.segment", body: .bytes(small))
        #expect(try await store.get("a/small.segment") == small)
        #expect(try await store.get("a/small.segment", range: 7..<14) == Array("walship".utf8))

        let odd = "dir/my file ü ሴ+%=&.db"
        try await store.put(odd, body: .bytes(small))
        #expect(try await store.get(odd) == small)
        let listed = try await store.list(prefix: "dir/")
        #expect(listed.map(\.key) == [odd])

        // A PUT replaces the object as a whole.
        try await store.put("a/small.segment", body: .bytes(Array("v2".utf8)))
        #expect(try await store.get("a/small.segment") == Array("v2".utf8))
    }

    @Test("a 50 MB object goes up in parts and comes back byte for byte", arguments: StoreKind.allCases)
    func largeObjectRoundTrips(kind: StoreKind) async throws {
        let fixture = try await StoreFixture.make(kind)
        defer { fixture.stop() }
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        let bytes = randomBytes(50 * 1_000_000 + 17, seed: 7)
        let source = scratch.file("big.bin")
        _ = FileManager.default.createFile(atPath: source, contents: Data(bytes))
        try await fixture.store.put("big/object.snapshot", body: .file(path: source))
        #expect(try await fixture.store.head("big/object.snapshot").size == Int64(bytes.count))
        let target = scratch.file("download.bin")
        let size = try await fixture.store.download("big/object.snapshot", to: target)
        #expect(size == Int64(bytes.count))
        let downloaded = try [UInt8](Data(contentsOf: URL(fileURLWithPath: target)))
        #expect(sha256(downloaded) == sha256(bytes))
        #expect(
            try await fixture.store.get("big/object.snapshot", range: 49_999_990..<50_000_017)
                == Array(bytes[49_999_990...]))
    }

    @Test(
        "listing 2,500 keys follows continuation tokens, with prefixes and start-after", arguments: StoreKind.allCases)
    func listingPaginates(kind: StoreKind) async throws {
        let fixture = try await StoreFixture.make(kind)
        defer { fixture.stop() }
        let store = fixture.store
        let keys = (0..<2500).map { String(format: "gen/0001/segments/%06d.segment", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            for _ in 0..<8 {
                let key = keys[next]
                next += 1
                group.addTask { try await store.put(key, body: .bytes([1])) }
            }
            while try await group.next() != nil, next < keys.count {
                let key = keys[next]
                next += 1
                group.addTask { try await store.put(key, body: .bytes([1])) }
            }
        }
        try await store.put("gen/0002/other", body: .bytes([2]))
        let first = try await store.listPage(
            prefix: "gen/0001/", startAfter: nil, continuationToken: nil, maxKeys: 1000)
        #expect(first.objects.count == 1000)
        #expect(first.continuationToken != nil)
        let all = try await store.list(prefix: "gen/0001/")
        #expect(all.map(\.key) == keys)
        let after = try await store.list(prefix: "gen/0001/", startAfter: keys[2399])
        #expect(after.map(\.key) == Array(keys[2400...]))
        #expect(try await store.list(prefix: "gen/").count == 2501)
        #expect(try await store.list(prefix: "nothing/").isEmpty)
    }

    @Test("batch delete removes keys and ignores a key that does not exist", arguments: StoreKind.allCases)
    func batchDelete(kind: StoreKind) async throws {
        let fixture = try await StoreFixture.make(kind)
        defer { fixture.stop() }
        let store = fixture.store
        for index in 0..<5 { try await store.put("d/\(index)", body: .bytes([UInt8(index)])) }
        let failures = try await store.delete(["d/0", "d/1", "d/does-not-exist", "d/3"])
        #expect(failures.isEmpty)
        #expect(try await store.list(prefix: "d/").map(\.key) == ["d/2", "d/4"])
        try await store.delete("d/2")
        try await store.delete("d/never-existed")
        #expect(try await store.list(prefix: "d/").map(\.key) == ["d/4"])
    }

    @Test("missing objects are objectNotFound for GET, HEAD and download", arguments: StoreKind.allCases)
    func missingObjects(kind: StoreKind) async throws {
        let fixture = try await StoreFixture.make(kind)
        defer { fixture.stop() }
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        for action in ["get", "head", "download"] {
            do {
                switch action {
                case "get": _ = try await fixture.store.get("no/such/key")
                case "head": _ = try await fixture.store.head("no/such/key")
                default: _ = try await fixture.store.download("no/such/key", to: scratch.file("x"))
                }
                Issue.record("\(action) of a missing key succeeded")
            } catch let error as WalshipError {
                #expect(error.code == .objectNotFound, "\(action): \(error)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.file("x")))
        #expect(try await fixture.store.exists("no/such/key") == false)
    }

    @Test("a conditional PUT of an existing key fails with objectExists where the store enforces it")
    func conditionalPut() async throws {
        let fixture = try await StoreFixture.make(.file)
        defer { fixture.stop() }
        #expect(fixture.store.supportsConditionalPut)
        try await fixture.store.put("c/once", body: .bytes([1]), ifNoneMatch: true)
        do {
            try await fixture.store.put("c/once", body: .bytes([2]), ifNoneMatch: true)
            Issue.record("second conditional PUT succeeded")
        } catch let error as WalshipError {
            #expect(error.code == .objectExists)
        }
        #expect(try await fixture.store.get("c/once") == [1])
    }
}

@Suite("S3 errors and retries", .serialized)
struct S3ErrorContractTests {
    @Test("a wrong secret is a clear 403 that names the access key id and never the secret")
    func wrongSecret() async throws {
        let server = try await S3TestServer.start()
        defer { server.stop() }
        let store = try server.makeStore(
            credentials: AWSCredentials(
                accessKeyID: server.accessKeyID, secretAccessKey: "wrong-secret-value", sessionToken: nil))
        do {
            try await store.put("x", body: .bytes([1]))
            Issue.record("PUT with a wrong secret succeeded")
        } catch let error as WalshipError {
            #expect(error.code == .accessDenied)
            #expect(error.code.exitCode == 4)
            #expect(error.description.contains(server.accessKeyID))
            #expect(!error.description.contains("wrong-secret-value"))
        }
    }

    @Test("a missing bucket is bucketNotFound")
    func missingBucket() async throws {
        let server = try await S3TestServer.start()
        defer { server.stop() }
        let store = try server.makeStore(bucket: "no-such-bucket")
        do {
            _ = try await store.listPage(prefix: "", startAfter: nil, continuationToken: nil, maxKeys: 10)
            Issue.record("LIST of a missing bucket succeeded")
        } catch let error as WalshipError {
            #expect(error.code == .bucketNotFound, "\(error)")
        }
        let fileStore = try FileObjectStore(root: "/nonexistent/walship/replica")
        await #expect { try await fileStore.list(prefix: "") } throws: {
            ($0 as? WalshipError)?.code == .bucketNotFound
        }
    }

    @Test("retries recover from injected 503 SlowDown and dropped connections, signing each attempt")
    func retriesRecover() async throws {
        let server = try await S3TestServer.start()
        defer { server.stop() }
        let plan = FaultPlan()
        let transport = FaultInjectingTransport(base: CurlTransport(), plan: plan)
        let store = try server.makeStore(transport: transport) { configuration in
            configuration.retry = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20))
        }
        plan.failNext(2, with: .slowDown)
        try await store.put("r/1", body: .bytes([9]))
        plan.failNext(1, with: .dropConnection)
        plan.failNext(1, with: .internalError)
        #expect(try await store.get("r/1") == [9])
        #expect(plan.injected == 4)
        #expect(plan.requests == 6)

        // A persistent outage gives up with storeUnavailable after maxAttempts.
        plan.failNext(10, with: .slowDown)
        await #expect { try await store.get("r/1") } throws: { error in
            guard let error = error as? WalshipError else { return false }
            return error.code == .storeUnavailable && error.code.exitCode == 4
        }
        #expect(plan.requests == 11)
    }

    @Test("a multipart upload that keeps failing is aborted and leaves no object")
    func failedMultipartIsAborted() async throws {
        let server = try await S3TestServer.start()
        defer { server.stop() }
        let plan = FaultPlan()
        let transport = FaultInjectingTransport(base: CurlTransport(), plan: plan)
        let store = try server.makeStore(transport: transport) { configuration in
            configuration.partSize = 5 << 20
            configuration.retry = RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(5), maxDelay: .milliseconds(10))
        }
        // Request 1 creates the upload; parts 2 and 3 fail twice each (on both attempts).
        plan.inject(.internalError, atRequest: 2)
        plan.inject(.internalError, atRequest: 3)
        plan.inject(.internalError, atRequest: 4)
        plan.inject(.internalError, atRequest: 5)
        await #expect(throws: WalshipError.self) {
            try await store.put("mp/fails", body: .bytes(randomBytes(11 << 20, seed: 3)))
        }
        #expect(plan.operations["DELETE", default: 0] >= 1, "the upload was aborted: \(plan.operations)")
        #expect(try await store.exists("mp/fails") == false)
    }
}
