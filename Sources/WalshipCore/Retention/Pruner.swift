/// Carries out a `RetentionPolicy.Plan` against a replica: deletes in batches (DeleteObjects on
/// S3), reads every per-key error, then lists again to confirm the objects are gone (a store can
/// answer a delete with success and keep the object). Never deletes anything the plan does not
/// name.
public struct Pruner: Sendable {
    public let replica: Replica

    public init(replica: Replica) {
        self.replica = replica
    }

    public struct Outcome: Sendable, Equatable {
        /// Keys the store refused to delete, with its reason.
        public var failures: [DeleteFailure] = []
        /// Keys the store said it deleted but still lists.
        public var persisting: [String] = []
        /// Keys confirmed gone.
        public var deleted = 0

        public var succeeded: Bool { failures.isEmpty && persisting.isEmpty }
    }

    public func execute(_ plan: RetentionPolicy.Plan) async throws -> Outcome {
        var outcome = Outcome()
        guard !plan.delete.isEmpty else { return outcome }
        var start = 0
        while start < plan.delete.count {
            let batch = Array(plan.delete[start..<min(start + 1000, plan.delete.count)])
            start += batch.count
            outcome.failures += try await replica.store.delete(batch)
        }
        let listed = Set(try await replica.store.list(prefix: replica.layout.generationsPrefix).map(\.key))
        let refused = Set(outcome.failures.map(\.key))
        outcome.persisting = plan.delete.filter { listed.contains($0) && !refused.contains($0) }
        outcome.deleted = plan.delete.filter { !listed.contains($0) }.count
        return outcome
    }
}
