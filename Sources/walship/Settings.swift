/// Every key of walship.yml, once: the decoder's key sets come from this table, the flags of
/// `walship replicate` take their help from it, and a test holds docs/configuration.md's table
/// to it, so that the three cannot drift apart.
struct Setting: Sendable {
    enum Level: String, Sendable { case global, bucket, database }

    var key: String
    /// Where the key may stand (a database-level value overrides the bucket's).
    var levels: [Level]
    /// The default, as the documentation writes it.
    var defaultValue: String
    /// The `walship replicate` flag that sets it, when there is one.
    var flag: String?
    /// What it does (a flag's help is this and the default).
    var meaning: String
    /// Documented, but its feature is not built yet: refused as unsupported.
    var unsupported = false

    /// The help of the setting's flag: its meaning and default.
    var flagHelp: String { "\(meaning) (default \(defaultValue))." }

    static let all: [Setting] = [
        Setting(
            key: "state-dir", levels: [.global], defaultValue: "$XDG_STATE_HOME/walship", flag: "--state-dir",
            meaning: "Local state and spool directory"),
        Setting(key: "log-level", levels: [.global], defaultValue: "info", meaning: "Log level"),
        Setting(key: "log-format", levels: [.global], defaultValue: "text", meaning: "Log format"),
        Setting(
            key: "spool-max-bytes", levels: [.global], defaultValue: "1GiB", flag: "--spool-max-bytes",
            meaning: "Largest spool before the read chain is ended during a store outage"),
        Setting(
            key: "shutdown-timeout", levels: [.global], defaultValue: "10s", flag: "--shutdown-timeout",
            meaning: "How long a stop may take to ship what is committed"),
        Setting(
            key: "http-addr", levels: [.global], defaultValue: "off", flag: "--http-addr",
            meaning: "Serve Prometheus metrics at http://HOST:PORT/metrics"),
        Setting(
            key: "exec", levels: [.global], defaultValue: "off", flag: "--exec",
            meaning:
                "Run this command as the application: signals are passed on to it; when it exits, walship ships what is committed and exits with its status"
        ),
        Setting(
            key: "restore-if-missing", levels: [.global], defaultValue: "false", flag: "--restore-if-missing",
            meaning: "Restore a database that does not exist from its replica first (an empty replica: start without)"),
        Setting(key: "buckets", levels: [.global], defaultValue: "required", meaning: "The buckets, by name"),
        Setting(key: "databases", levels: [.global], defaultValue: "required", meaning: "The databases"),
        Setting(key: "url", levels: [.bucket], defaultValue: "required", meaning: "s3://bucket/base or file:///dir"),
        Setting(key: "endpoint", levels: [.bucket], defaultValue: "AWS", meaning: "The S3 endpoint"),
        Setting(key: "region", levels: [.bucket], defaultValue: "us-east-1", meaning: "The S3 region"),
        Setting(key: "path-style", levels: [.bucket], defaultValue: "auto", meaning: "Path-style S3 addressing"),
        Setting(key: "access-key-id", levels: [.bucket], defaultValue: "none", meaning: "Credentials"),
        Setting(key: "secret-access-key", levels: [.bucket], defaultValue: "none", meaning: "Credentials"),
        Setting(key: "session-token", levels: [.bucket], defaultValue: "none", meaning: "Credentials"),
        Setting(key: "profile", levels: [.bucket], defaultValue: "none", meaning: "Credentials"),
        Setting(
            key: "sync-interval", levels: [.bucket, .database], defaultValue: "1s", flag: "--sync-interval",
            meaning: "How often to cut a segment while there are commits"),
        Setting(
            key: "snapshot-interval", levels: [.bucket], defaultValue: "24h", flag: "--snapshot-interval",
            meaning: "How often to take a snapshot"),
        Setting(
            key: "compression", levels: [.bucket], defaultValue: "zstd", flag: "--compression",
            meaning: "Compression of new objects: zstd, gzip or none"),
        Setting(key: "part-size", levels: [.bucket], defaultValue: "16MiB", meaning: "Multipart part size"),
        Setting(key: "upload-concurrency", levels: [.bucket], defaultValue: "4", meaning: "Parts uploaded at once"),
        Setting(key: "path", levels: [.database], defaultValue: "required", meaning: "The database file"),
        Setting(key: "buckets", levels: [.database], defaultValue: "required", meaning: "Bucket names"),
        Setting(key: "bucket", levels: [.database], defaultValue: "required", meaning: "A bucket name"),
        Setting(
            key: "prefix", levels: [.database], defaultValue: "the file name without extension",
            meaning: "Where objects go under the bucket URL's path"),
        Setting(
            key: "wal-poll-interval", levels: [.database], defaultValue: "100ms", flag: "--wal-poll-interval",
            meaning: "How often to poll the WAL"),
        Setting(
            key: "segment-max-bytes", levels: [.database], defaultValue: "16MiB",
            meaning: "Cut a segment when it reaches this size"),
        Setting(
            key: "wal-max-frames", levels: [.database], defaultValue: "1000", flag: "--wal-max-frames",
            meaning: "Checkpoint (PASSIVE, then a bounded RESTART) above this many WAL frames"),
        Setting(key: "checkpoint-restart", levels: [.database], defaultValue: "true", meaning: "The bounded RESTART"),
        Setting(
            key: "checkpoint-busy-timeout", levels: [.database], defaultValue: "50ms",
            meaning: "The bounded RESTART's busy timeout"),
        Setting(
            key: "snapshot-step-pages", levels: [.database], defaultValue: "1024",
            meaning: "Pages per online-backup step"),
        Setting(
            key: "retention", levels: [.bucket], defaultValue: "72h", flag: "--retention",
            meaning: "How far back every moment stays restorable; older chains are deleted (none: never delete)"),
        Setting(
            key: "retention-grace", levels: [.bucket], defaultValue: "1h", flag: "--retention-grace",
            meaning: "Kept beyond the retention for restores planned just before a prune"),
        Setting(
            key: "verify-interval", levels: [.bucket], defaultValue: "off", flag: "--verify-interval",
            meaning:
                "How often the agent verifies its replica (new objects, chains, a trial restore of the latest point) when something changed (off: never)"
        ),
        Setting(
            key: "verify-max-bytes", levels: [.bucket], defaultValue: "1GiB", flag: "--verify-max-bytes",
            meaning: "The largest object, and trial restore (bytes of objects), a scheduled verify downloads"),
        Setting(
            key: "encryption-key-file", levels: [.bucket], defaultValue: "none", meaning: "Client-side encryption",
            unsupported: true),
    ]

    /// The keys allowed at `level` (unsupported ones are reported as such, not as unknown).
    static func keys(at level: Level) -> Set<String> {
        Set(all.filter { $0.levels.contains(level) && !$0.unsupported }.map(\.key))
    }

    static var unsupportedKeys: Set<String> { Set(all.filter(\.unsupported).map(\.key)) }

    /// The setting a replicate flag sets.
    static func flag(_ name: String) -> Setting {
        guard let setting = all.first(where: { $0.flag == name }) else {
            preconditionFailure("no setting has the flag \(name)")
        }
        return setting
    }
}
