/// One replica of one database: where its objects go.
public struct Replica: Sendable {
    public var store: any ObjectStore
    public var layout: ReplicaLayout

    public init(store: any ObjectStore, layout: ReplicaLayout) {
        self.store = store
        self.layout = layout
    }

    /// `s3://bucket/prefix` or `file:///dir/prefix`, for logs.
    public var location: String {
        layout.prefix.isEmpty ? store.location : "\(store.location)/\(layout.prefix.dropLast())"
    }

    /// Where the replica's objects really are (`ObjectStore.identity` and the prefix).
    public var identity: String {
        layout.prefix.isEmpty ? store.identity : "\(store.identity)/\(layout.prefix.dropLast())"
    }
}
