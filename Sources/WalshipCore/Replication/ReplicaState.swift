import Foundation

/// What the agent remembers locally about one database's replica, in
/// `<state-dir>/<db>/state.json` (written atomically). It is a cache: the bucket is the truth,
/// and a lost state file only costs a new generation.
public struct ReplicaState: Codable, Sendable, Equatable {
    public var formatVersion = 2
    public var generation: GenerationID
    public var reason: UInt8
    /// The txid before the generation's first transaction.
    public var baseTxid: UInt64
    /// The WAL position where the generation started.
    public var baseCursor: WALCursor
    public var predecessorGeneration: GenerationID?
    public var predecessorTxid: UInt64
    public var startedMs: UInt64
    var databaseIdentity: FileIdentity?
    /// Where the generation replicates (`Replica.location`); absent in states of walship 0.1.
    public var replica: String?
    /// The identity of the database this replica holds (`DatabaseID`); absent in states of
    /// walship 0.1, which then get one at their next generation.
    public var databaseID: DatabaseID?
    /// When the last snapshot of this generation was taken, and the last txid then.
    public var lastSnapshotMs: UInt64?
    public var lastSnapshotTxid: UInt64?

    static func load(from path: String) -> ReplicaState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(ReplicaState.self, from: data)
    }

    func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.writeAtomically(Array(try encoder.encode(self)), to: path)
    }
}
