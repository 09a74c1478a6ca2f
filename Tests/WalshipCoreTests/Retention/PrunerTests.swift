import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Pruner")
struct PrunerTests {
    /// A file store whose DeleteObjects refuses some keys, or says it deleted them and keeps them.
    struct StubbornStore: ObjectStore {
        let base: FileObjectStore
        var refuse: Set<String> = []
        var keep: Set<String> = []

        var location: String { base.location }
        var supportsConditionalPut: Bool { base.supportsConditionalPut }
        func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool) async throws {
            try await base.put(key, body: body, ifNoneMatch: ifNoneMatch)
        }
        func get(_ key: String, range: Range<Int64>?) async throws -> [UInt8] { try await base.get(key, range: range) }
        func download(_ key: String, to path: String) async throws -> Int64 { try await base.download(key, to: path) }
        func head(_ key: String) async throws -> ObjectInfo { try await base.head(key) }
        func delete(_ key: String) async throws { try await base.delete(key) }
        func delete(_ keys: [String]) async throws -> [DeleteFailure] {
            let failures = keys.filter { refuse.contains($0) }.map {
                DeleteFailure(key: $0, code: "AccessDenied", message: "refused by the test")
            }
            _ = try await base.delete(keys.filter { !refuse.contains($0) && !keep.contains($0) })
            return failures
        }
        func listPage(
            prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int
        ) async throws
            -> ObjectListPage
        {
            try await base.listPage(
                prefix: prefix, startAfter: startAfter, continuationToken: continuationToken, maxKeys: maxKeys)
        }
    }

    static let keys = (0..<5).map { "generations/0000000000000001/segments/\($0)" }

    func setup(
        _ directory: TemporaryDirectory, refuse: Set<String> = [], keep: Set<String> = []
    ) async throws
        -> Replica
    {
        let base = try FileObjectStore(root: directory.path, create: true)
        for key in Self.keys { try await base.put(key, body: .bytes([1]), ifNoneMatch: false) }
        return Replica(store: StubbornStore(base: base, refuse: refuse, keep: keep), layout: ReplicaLayout(prefix: ""))
    }

    static func plan(_ keys: [String]) -> RetentionPolicy.Plan {
        var plan = RetentionPolicy.Plan(windowStartMs: 0)
        plan.delete = keys
        return plan
    }

    @Test(
        "keys the store refuses are reported with its reason; keys it says it deleted but still lists are reported too")
    func refusedAndPersisting() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let replica = try await setup(directory, refuse: [Self.keys[1]], keep: [Self.keys[2]])
        let outcome = try await Pruner(replica: replica).execute(Self.plan(Array(Self.keys.prefix(4))))
        #expect(outcome.failures.map(\.key) == [Self.keys[1]])
        #expect(outcome.failures.first?.code == "AccessDenied")
        #expect(outcome.persisting == [Self.keys[2]])
        #expect(outcome.deleted == 2)
        #expect(!outcome.succeeded)
    }

    @Test("a clean prune deletes exactly the plan's keys")
    func deletesExactlyThePlan() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let replica = try await setup(directory)
        let outcome = try await Pruner(replica: replica).execute(Self.plan([Self.keys[0], Self.keys[3]]))
        #expect(outcome.succeeded && outcome.deleted == 2)
        let left = try await replica.store.list(prefix: "generations/").map(\.key)
        #expect(left.sorted() == [Self.keys[1], Self.keys[2], Self.keys[4]])
    }
}
