import Foundation
import Logging
import Synchronization
import WalshipCore
import WalshipS3

/// Turns a replica URL into a `Replica`, reading the environment for the S3 endpoint, region
/// and credentials (only the executable reads the environment):
///
/// - `file:///absolute/dir`: a local directory (`walship replicate` creates it at its first start).
/// - `s3://bucket/prefix`: S3 or an S3-compatible store; `AWS_ENDPOINT_URL`, `AWS_REGION` (or
///   `AWS_DEFAULT_REGION`) and the usual credential sources, overridable with the URL query
///   parameters `endpoint`, `region` and `path-style`.
enum ReplicaFactory {
    /// A replica from a URL given on the command line.
    static func replica(url text: String, logger: Logger) throws -> Replica {
        try replica(bucket: WalshipConfiguration.Bucket(name: "command line", url: text), prefix: "")
    }

    /// Stores already made, by bucket name: the databases of one bucket share its store, so its
    /// curl workers (8 at most) cap the bucket's concurrent requests across all of them.
    private static let stores = Mutex<[String: S3ObjectStore]>([:])

    /// A replica in a configured bucket, under the bucket URL's path plus `prefix`. The URL is
    /// parsed once, strictly (`ReplicaURL`); its query parameters fill in the endpoint, region and
    /// addressing the bucket does not set.
    static func replica(bucket configured: WalshipConfiguration.Bucket, prefix: String) throws -> Replica {
        let environment = ProcessInfo.processInfo.environment
        let url = try ReplicaURL.parse(configured.url)
        var bucket = configured
        bucket.endpoint = bucket.endpoint ?? url.endpoint
        bucket.region = bucket.region ?? url.region
        bucket.pathStyle = bucket.pathStyle ?? url.pathStyle
        if url.scheme == .file {
            let path = url.bucket
            // Percent-escapes in file URLs were taken literally before: a directory named with
            // the escape itself must not be swapped silently for the decoded one.
            let literal = String(configured.url.dropFirst("file://".count))
            if literal != path && FileSystem.isDirectory(literal) && !FileSystem.isDirectory(path) {
                throw WalshipError(
                    .usage,
                    "replica URL '\(configured.url)' names '\(path)' (percent-escapes are decoded), but the replica is in '\(literal)': write '%' as %25 to keep using it"
                )
            }
            let store = try FileObjectStore(root: path)
            return Replica(store: store, layout: ReplicaLayout(prefix: prefix))
        }
        let name = url.bucket
        let combined = [url.prefix, prefix].filter { !$0.isEmpty }.joined(separator: "/")
        if let store = stores.withLock({ $0[bucket.name] }) {
            return Replica(store: store, layout: ReplicaLayout(prefix: combined))
        }
        let region = bucket.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var configuration = S3Configuration(
            bucket: name,
            endpoint: bucket.endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"],
            region: region, pathStyle: bucket.pathStyle)
        if let partSize = bucket.partSize { configuration.partSize = partSize }
        if let concurrency = bucket.uploadConcurrency { configuration.uploadConcurrency = concurrency }
        configuration.transport.caBundle = environment["AWS_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"]
        let transport = CurlTransport(options: configuration.transport)
        let explicit = bucket.accessKeyID.map {
            AWSCredentials(
                accessKeyID: $0, secretAccessKey: bucket.secretAccessKey ?? "", sessionToken: bucket.sessionToken)
        }
        let credentials = try CredentialsResolver.provider(
            explicit: explicit, profile: bucket.profile, region: region, environment: environment,
            homeDirectory: environment["HOME"], transport: transport)
        let store = try S3ObjectStore(
            configuration: configuration, credentials: credentials, transport: transport,
            logger: Logger(label: "walship.s3"))
        stores.withLock { $0[bucket.name] = store }
        return Replica(store: store, layout: ReplicaLayout(prefix: combined))
    }

    /// Resolves a command's replica: a URL, or with `--config` a database (path or prefix) and
    /// its bucket (`--bucket`, else its first).
    static func replica(
        target: String, configPath: String?, bucketName: String?, logger: Logger
    ) throws -> Replica {
        guard let configPath else {
            if bucketName != nil { throw WalshipError(.usage, "--bucket needs --config") }
            return try replica(url: target, logger: logger)
        }
        let configuration = try ConfigFile.load(path: configPath, environment: ProcessInfo.processInfo.environment)
        let database = try configuration.database(named: target)
        let bucket = try configuration.bucket(for: database, named: bucketName)
        return try replica(bucket: bucket, prefix: database.prefix)
    }

    /// The state directory of replicating `database` to `bucket`: the database's own, or
    /// `<that>/replicas/<bucket>` when the database replicates to several buckets (each replica
    /// has its own position, generations and spool; the lock stays in the database's directory).
    static func stateDirectory(
        option: String?, database: WalshipConfiguration.Database, bucket: WalshipConfiguration.Bucket
    ) -> String {
        let directory = stateDirectory(option: option, databasePath: database.path)
        return database.bucketNames.count > 1 ? "\(directory)/replicas/\(bucket.name)" : directory
    }

    /// `--state-dir`, else `$XDG_STATE_HOME/walship`, else `~/.local/state/walship`; one
    /// subdirectory per database, named after the file and a hash of its canonical path (so
    /// two spellings of one database share one state and one lock). A state directory that
    /// walship 0.1 named after the path as given (before symbolic links were resolved) is kept.
    static func stateDirectory(option: String?, databasePath: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base =
            option ?? environment["XDG_STATE_HOME"].map { "\($0)/walship" }
            ?? "\(environment["HOME"] ?? "/tmp")/.local/state/walship"
        func directory(for path: String) -> String {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in path.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return "\(FileSystem.absolute(base))/\(FileSystem.fileName(of: path))-\(String(hash, radix: 16).prefix(8))"
        }
        let canonical = directory(for: FileSystem.canonical(databasePath))
        let legacy = directory(for: FileSystem.absolute(databasePath))
        if legacy != canonical && !FileManager.default.fileExists(atPath: canonical)
            && FileManager.default.fileExists(atPath: legacy)
        {
            return legacy
        }
        return canonical
    }
}
