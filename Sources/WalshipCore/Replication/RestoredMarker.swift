import Foundation

/// What `walship restore` leaves in the state directory of the database it wrote
/// (`<state-dir>/<db>/restored.json`): the replica and the restore point it came from. The next
/// agent for that database starts a new generation linked to that point (reason `restored`: a
/// branch of the lineage, not a fork) and takes on the replica's database identity, so a database
/// restored to another path (a disaster drill) may replicate to its replica again.
public struct RestoredMarker: Codable, Sendable, Equatable {
    /// `Replica.location` of the replica it was restored from.
    public var replica: String
    public var databaseID: DatabaseID?
    public var generation: GenerationID
    public var txid: UInt64
    public var restoredMs: UInt64

    public init(replica: String, databaseID: DatabaseID?, generation: GenerationID, txid: UInt64, restoredMs: UInt64) {
        self.replica = replica
        self.databaseID = databaseID
        self.generation = generation
        self.txid = txid
        self.restoredMs = restoredMs
    }

    public static func path(in stateDirectory: String) -> String { stateDirectory + "/restored.json" }

    /// The marker in `stateDirectory` for `replica`, if any.
    public static func load(from stateDirectory: String, replica: String) -> RestoredMarker? {
        guard let data = try? FileSystem.contents(of: path(in: stateDirectory)),
            let marker = try? JSONDecoder().decode(RestoredMarker.self, from: Data(data)), marker.replica == replica
        else { return nil }
        return marker
    }

    public func save(in stateDirectory: String) throws {
        try FileSystem.createDirectories(stateDirectory, mode: 0o700)
        try FileSystem.writeAtomically(
            Array(try JSONEncoder().encode(self)), to: Self.path(in: stateDirectory), mode: 0o600)
    }
}
