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
    /// How far back every moment stays restorable; nil (`none`) never deletes.
    public var retention: Duration? = .seconds(72 * 3600)
    /// Kept beyond the retention for restores planned just before a prune.
    public var retentionGrace: Duration = .seconds(3600)
    /// How often the agent verifies its replica (`VerifyTask`); nil (`off`) never.
    public var verifyInterval: Duration?
    /// The largest restore (its objects' bytes) the scheduled verify tries.
    public var verifyMaxBytes: Int64 = 1 << 30
    /// Whether the agent takes the `ReplicaLock` (waits while another agent replicates the
    /// database to the same replica). Only tests turn it off, to stand for two machines that
    /// share a replica (`WALSHIP_TEST_WITHOUT_REPLICA_LOCK=1`, docs/testing.md).
    public var replicaLock = true
    /// Tests only (`WALSHIP_TEST_PAUSE_AFTER_CONTENT_CHECK=<duration>`, docs/testing.md): how long
    /// the start's content check waits after reading the database, saying so in the log, so that
    /// the torture test can commit in exactly that window.
    public var pauseAfterContentCheck: Duration?
    /// Wait for the database to exist and be in WAL mode instead of exiting 3 (`--exec`: the
    /// application creates it).
    public var waitForDatabase = false

    public init() {}
}
