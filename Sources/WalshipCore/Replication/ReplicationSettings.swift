/// The tunables of replicating one database (DESIGN.md section 7, with its defaults).
public struct ReplicationSettings: Sendable, Equatable {
    public var walPollInterval: Duration = .milliseconds(100)
    public var syncInterval: Duration = .seconds(1)
    public var segmentMaxBytes: Int64 = 16 << 20
    public var walMaxFrames: UInt32 = 1000
    public var checkpointRestart = true
    public var checkpointBusyTimeout: Duration = .milliseconds(50)
    public var snapshotInterval: Duration = .seconds(24 * 3600)
    public var snapshotStepPages: Int32 = 1024
    public var compression: CompressionCodec = .zstd
    public var spoolMaxBytes: Int64 = 1 << 30
    public var shutdownTimeout: Duration = .seconds(10)

    public init() {}
}
