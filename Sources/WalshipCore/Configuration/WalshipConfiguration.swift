/// The resolved, validated contents of `walship.yml` (DESIGN.md section 7): named buckets, and
/// databases that reference them. Produced by the executable's config file decoder, which reports
/// every problem at once; consumed by `replicate`, `restore` and `list`.
public struct WalshipConfiguration: Sendable {
    /// One named bucket: where replicas go and how to reach it.
    public struct Bucket: Sendable, Equatable {
        public var name: String
        /// `s3://bucket/base-prefix` or `file:///dir`.
        public var url: String
        public var endpoint: String?
        public var region: String?
        public var pathStyle: Bool?
        public var accessKeyID: String?
        public var secretAccessKey: String?
        public var sessionToken: String?
        public var profile: String?
        public var syncInterval: Duration?
        public var snapshotInterval: Duration?
        public var compression: CompressionCodec?
        public var partSize: Int64?
        public var uploadConcurrency: Int?
        /// `retention`: nil when not set (the default applies), `.some(nil)` for `none`.
        public var retention: Duration??
        public var retentionGrace: Duration?
        /// `verify-interval`: nil when not set, `.some(nil)` for `off`.
        public var verifyInterval: Duration??
        public var verifyMaxBytes: Int64?

        public init(name: String, url: String) {
            self.name = name
            self.url = url
        }
    }

    /// One database and how it is replicated: to each of its buckets, with that bucket's
    /// settings (bucket-level keys, overridden by the database's own).
    public struct Database: Sendable, Equatable {
        public var path: String
        /// One or more; the first is the default of `restore` and `list`.
        public var bucketNames: [String]
        /// The prefix under the bucket's URL; default: the file name without its extension.
        public var prefix: String
        public var settingsByBucket: [String: ReplicationSettings]

        public init(
            path: String, bucketNames: [String], prefix: String, settingsByBucket: [String: ReplicationSettings]
        ) {
            self.path = path
            self.bucketNames = bucketNames
            self.prefix = prefix
            self.settingsByBucket = settingsByBucket
        }

        /// The settings of replicating to `bucket` (default: the first bucket).
        public func settings(forBucket bucket: String? = nil) -> ReplicationSettings {
            settingsByBucket[bucket ?? bucketNames.first ?? ""] ?? ReplicationSettings()
        }
    }

    public var stateDirectory: String?
    public var logLevel: String?
    public var logFormat: String?
    /// `http-addr`: where to serve `/metrics` (off when nil).
    public var httpAddress: String?
    /// `exec`: the application to run as a child (see `replicate --exec`).
    public var exec: String?
    /// `restore-if-missing`: restore a missing database from its replica before starting.
    public var restoreIfMissing: Bool?
    public var buckets: [String: Bucket] = [:]
    public var databases: [Database] = []

    public init() {}

    /// The database a command names: by path (compared as absolute paths) or by prefix.
    public func database(named name: String) throws -> Database {
        let absolute = FileSystem.absolute(name)
        if let match = databases.first(where: { FileSystem.absolute($0.path) == absolute || $0.prefix == name }) {
            return match
        }
        throw WalshipError(.usage, "database '\(name)' is not in the configuration file")
    }

    /// The bucket a database uses: `name`, or its first.
    public func bucket(for database: Database, named name: String? = nil) throws -> Bucket {
        let chosen = name ?? database.bucketNames.first!
        guard database.bucketNames.contains(chosen), let bucket = buckets[chosen] else {
            throw WalshipError(.usage, "database '\(database.path)' does not use a bucket named '\(chosen)'")
        }
        return bucket
    }
}
