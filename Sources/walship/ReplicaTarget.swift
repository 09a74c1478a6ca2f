import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// The replica `restore` and `list` read: a URL, or with `--config` a database of the file and
/// its bucket (`--bucket`, else its first).
struct ReplicaTarget: ParsableArguments {
    @Argument(help: "The replica (s3://bucket/prefix or file:///dir), or with --config a database path or prefix.")
    var replicaURL: String

    @Option(name: .long, help: "The configuration file (walship.yml) that names the database.")
    var config: String?

    @Option(name: .long, help: "With --config, the bucket to use (default: the database's first).")
    var bucket: String?

    func replica(logger: Logger) throws -> Replica {
        try ReplicaFactory.replica(
            target: replicaURL, configPath: config, bucketName: bucket, logger: logger)
    }

    /// With `--config`, the retention policy the configuration gives the database's bucket (nil
    /// for `retention: none`); without it, nil.
    func configuredRetention() throws -> RetentionPolicy?? {
        guard let config else { return nil }
        let configuration = try ConfigFile.load(path: config, environment: ProcessInfo.processInfo.environment)
        let database = try configuration.database(named: replicaURL)
        let name = try configuration.bucket(for: database, named: bucket).name
        let settings = database.settings(forBucket: name)
        return .some(settings.retention.map { RetentionPolicy(retention: $0, grace: settings.retentionGrace) })
    }
}
