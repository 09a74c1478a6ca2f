import Foundation
import WalshipCore
import WalshipS3
import Yams

/// Decodes `walship.yml` into a `WalshipConfiguration`: `${ENV}` references in values are
/// expanded (an unset variable is an error), unknown keys are errors, keys whose feature is not
/// built yet are rejected as unsupported, and every problem is reported at once.
struct ConfigFile {
    static let globalKeys = Setting.keys(at: .global)
    static let bucketKeys = Setting.keys(at: .bucket)
    static let databaseKeys = Setting.keys(at: .database)
    /// Documented keys whose feature this version does not have yet.
    static let unsupportedKeys = Setting.unsupportedKeys

    let environment: [String: String]
    private var problems: [String] = []

    init(environment: [String: String]) {
        self.environment = environment
    }

    static func load(path: String, environment: [String: String]) throws -> WalshipConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WalshipError(.usage, "read configuration file '\(path)': cannot read the file")
        }
        var decoder = ConfigFile(environment: environment)
        return try decoder.decode(text, path: path)
    }

    mutating func decode(_ text: String, path: String) throws -> WalshipConfiguration {
        let document: ConfigDocument?
        do {
            document = try ConfigDocument.decode(text)
        } catch {
            throw WalshipError(.usage, "configuration file '\(path)' is not valid YAML: \(error)")
        }
        guard let document else {
            throw WalshipError(.usage, "configuration file '\(path)' must be a mapping with 'buckets' and 'databases'")
        }
        let top = document.top.settings
        var configuration = WalshipConfiguration()
        var spoolMaxBytes: Int64?
        var shutdownTimeout: Duration?
        checkKeys(top, allowed: Self.globalKeys, at: "")
        configuration.stateDirectory = string(top["state-dir"], "state-dir")
        configuration.logLevel = string(top["log-level"], "log-level")
        configuration.logFormat = string(top["log-format"], "log-format")
        if let address = string(top["http-addr"], "http-addr") {
            do {
                _ = try MetricsServer.split(address)
                configuration.httpAddress = address
            } catch let error as WalshipError {
                problems.append("http-addr: \(error.message)")
            }
        }
        configuration.exec = string(top["exec"], "exec")
        configuration.restoreIfMissing = bool(top["restore-if-missing"], "restore-if-missing")
        spoolMaxBytes = size(top["spool-max-bytes"], "spool-max-bytes")
        shutdownTimeout = duration(top["shutdown-timeout"], "shutdown-timeout")

        switch document.top.buckets {
        case .value(let buckets)?:
            for (name, value) in buckets.sorted(by: { $0.key < $1.key }) {
                if let bucket = bucket(named: name, value) { configuration.buckets[name] = bucket }
            }
        case .invalid?:
            problems.append("buckets: expected a mapping of bucket names")
        case nil:
            problems.append("buckets: at least one bucket is required")
        }

        switch document.top.databases {
        case .value(let databases)?:
            let defaults = Defaults(spoolMaxBytes: spoolMaxBytes, shutdownTimeout: shutdownTimeout)
            for (index, value) in databases.enumerated() {
                if let database = database(
                    at: index, value, buckets: configuration.buckets,
                    bucketsGiven: document.top.buckets?.value != nil, defaults: defaults)
                {
                    configuration.databases.append(database)
                }
            }
            let paths = configuration.databases.map { FileSystem.absolute($0.path) }
            for path in Set(paths) where paths.filter({ $0 == path }).count > 1 {
                problems.append("databases: '\(path)' is listed more than once")
            }
            problems += Self.sharedReplicas(configuration)
        case .invalid?:
            problems.append("databases: expected a list")
        case nil:
            break
        }
        guard problems.isEmpty else {
            throw WalshipError(
                .usage,
                "configuration file '\(path)' has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n  "
                    + problems.joined(separator: "\n  "))
        }
        return configuration
    }

    /// One entry of `buckets:`, or nil when it is unusable (its problems are recorded).
    private mutating func bucket(
        named name: String, _ value: Lenient<BucketSection>
    ) -> WalshipConfiguration.Bucket? {
        guard let fields = value.value else {
            problems.append("buckets.\(name): expected a mapping")
            return nil
        }
        let at = "buckets.\(name)."
        // A bucket's name can become part of a state directory's name.
        if name.isEmpty
            || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        {
            problems.append("buckets.\(name): a bucket name uses only letters, digits, '.', '_' and '-'")
        }
        checkKeys(fields, allowed: Self.bucketKeys, at: at)
        guard let url = string(fields["url"], at + "url") else {
            // (A value that could not be read is reported already.)
            if fields["url"] == nil { problems.append("\(at)url is required") }
            return nil
        }
        do {
            _ = try ReplicaURL.parse(url)
        } catch {
            problems.append("\(at)url: \((error as? WalshipError)?.message ?? "\(error)")")
        }
        var bucket = WalshipConfiguration.Bucket(name: name, url: url)
        bucket.endpoint = string(fields["endpoint"], at + "endpoint")
        bucket.region = string(fields["region"], at + "region")
        bucket.pathStyle = bool(fields["path-style"], at + "path-style")
        bucket.accessKeyID = string(fields["access-key-id"], at + "access-key-id")
        bucket.secretAccessKey = string(fields["secret-access-key"], at + "secret-access-key")
        bucket.sessionToken = string(fields["session-token"], at + "session-token")
        bucket.profile = string(fields["profile"], at + "profile")
        if (bucket.accessKeyID == nil) != (bucket.secretAccessKey == nil) {
            problems.append("\(at)access-key-id and secret-access-key must be given together")
        }
        bucket.syncInterval = duration(fields["sync-interval"], at + "sync-interval")
        bucket.snapshotInterval = duration(fields["snapshot-interval"], at + "snapshot-interval")
        if let name = string(fields["compression"], at + "compression") {
            bucket.compression = CompressionCodec(name: name)
            if bucket.compression == nil {
                problems.append("\(at)compression '\(name)': use zstd, gzip or none")
            }
        }
        bucket.partSize = size(fields["part-size"], at + "part-size")
        if let partSize = bucket.partSize, partSize < 5 << 20 {
            problems.append("\(at)part-size must be at least 5MiB")
        }
        bucket.uploadConcurrency = integer(fields["upload-concurrency"], at + "upload-concurrency", minimum: 1)
        if string(fields["retention"], at + "retention") == "none" {
            bucket.retention = .some(nil)
        } else if let retention = duration(fields["retention"], at + "retention") {
            bucket.retention = .some(retention)
        }
        bucket.retentionGrace = duration(fields["retention-grace"], at + "retention-grace")
        if string(fields["verify-interval"], at + "verify-interval") == "off" {
            bucket.verifyInterval = .some(nil)
        } else if let interval = duration(fields["verify-interval"], at + "verify-interval") {
            bucket.verifyInterval = .some(interval)
        }
        bucket.verifyMaxBytes = size(fields["verify-max-bytes"], at + "verify-max-bytes")
        return bucket
    }

    /// The top-level settings every database's replication starts from.
    private struct Defaults {
        var spoolMaxBytes: Int64?
        var shutdownTimeout: Duration?
    }

    /// One entry of `databases:`, or nil when it is unusable (its problems are recorded).
    private mutating func database(
        at index: Int, _ value: Lenient<DatabaseSection>, buckets: [String: WalshipConfiguration.Bucket],
        bucketsGiven: Bool, defaults: Defaults
    ) -> WalshipConfiguration.Database? {
        let at = "databases[\(index)]."
        guard let fields = value.value else {
            problems.append("databases[\(index)]: expected a mapping")
            return nil
        }
        checkKeys(fields, allowed: Self.databaseKeys, at: at)
        // A path that cannot be read is one problem; the entry's others are still reported.
        let path = string(fields["path"], at + "path")
        if fields["path"] == nil { problems.append("\(at)path is required") }
        let problemsBefore = problems.count
        var names: [String] = []
        if let single = string(fields["bucket"], at + "bucket") { names.append(single) }
        if case .list(let list)? = fields["buckets"] {
            names += list.compactMap { string($0, at + "buckets") }
        } else if fields["buckets"] != nil {
            problems.append("\(at)buckets: expected a list of bucket names")
        }
        if names.isEmpty && problems.count == problemsBefore {
            problems.append("\(at)buckets: name at least one bucket")
        }
        for name in names where bucketsGiven && buckets[name] == nil {
            problems.append("\(at)buckets: no bucket named '\(name)'")
        }
        for name in Set(names) where names.filter({ $0 == name }).count > 1 {
            problems.append("\(at)buckets: '\(name)' is named more than once")
        }
        // Database-level keys override the bucket's (DESIGN.md section 7).
        let walPollInterval = duration(fields["wal-poll-interval"], at + "wal-poll-interval")
        let syncInterval = duration(fields["sync-interval"], at + "sync-interval")
        let segmentMaxBytes = size(fields["segment-max-bytes"], at + "segment-max-bytes")
        let walMaxFrames = integer(fields["wal-max-frames"], at + "wal-max-frames", minimum: 1)
        let checkpointRestart = bool(fields["checkpoint-restart"], at + "checkpoint-restart")
        let checkpointBusyTimeout = duration(fields["checkpoint-busy-timeout"], at + "checkpoint-busy-timeout")
        let snapshotStepPages = integer(fields["snapshot-step-pages"], at + "snapshot-step-pages", minimum: 1)
        var settingsByBucket: [String: ReplicationSettings] = [:]
        for name in names {
            let bucket = buckets[name]
            var settings = ReplicationSettings()
            if let value = defaults.spoolMaxBytes { settings.spoolMaxBytes = value }
            if let value = defaults.shutdownTimeout { settings.shutdownTimeout = value }
            if let value = bucket?.syncInterval { settings.syncInterval = value }
            if let value = bucket?.snapshotInterval { settings.snapshotInterval = value }
            if let value = bucket?.compression { settings.compression = value }
            if let value = bucket?.retention { settings.retention = value }
            if let value = bucket?.retentionGrace { settings.retentionGrace = value }
            if let value = bucket?.verifyInterval { settings.verifyInterval = value }
            if let value = bucket?.verifyMaxBytes { settings.verifyMaxBytes = value }
            if let walPollInterval { settings.walPollInterval = walPollInterval }
            if let syncInterval { settings.syncInterval = syncInterval }
            if let segmentMaxBytes { settings.segmentMaxBytes = segmentMaxBytes }
            if let walMaxFrames { settings.walMaxFrames = UInt32(walMaxFrames) }
            if let checkpointRestart { settings.checkpointRestart = checkpointRestart }
            if let checkpointBusyTimeout { settings.checkpointBusyTimeout = checkpointBusyTimeout }
            if let snapshotStepPages { settings.snapshotStepPages = Int32(snapshotStepPages) }
            settingsByBucket[name] = settings
        }
        let explicitPrefix = string(fields["prefix"], at + "prefix")
        if let explicitPrefix, !explicitPrefix.isEmpty,
            explicitPrefix.split(separator: "/", omittingEmptySubsequences: false).contains(where: { segment in
                segment.isEmpty || segment == "." || segment == ".." || segment.contains("\\")
                    || segment.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            })
        {
            problems.append(
                "\(at)prefix '\(explicitPrefix)': use path segments separated by single '/' (no empty, '.' or '..' segment, no leading or trailing '/', no backslash or control character)"
            )
        }
        guard let path else { return nil }
        let defaultPrefix = FileSystem.fileName(of: path).split(separator: ".").first.map(String.init) ?? "db"
        return WalshipConfiguration.Database(
            path: path, bucketNames: names, prefix: explicitPrefix ?? defaultPrefix, settingsByBucket: settingsByBucket)
    }

    /// Two databases that resolve to one replica (the bucket's store and URL path, plus the
    /// database's prefix) would mix their generations: each such pair is a problem naming both.
    static func sharedReplicas(_ configuration: WalshipConfiguration) -> [String] {
        var owners: [String: String] = [:]
        var problems: [String] = []
        for database in configuration.databases {
            for name in database.bucketNames {
                guard let bucket = configuration.buckets[name], let url = try? ReplicaURL.parse(bucket.url) else {
                    continue
                }
                // Where the objects go, whichever way the URL and the prefix split it: a
                // directory (symbolic links resolved), or a bucket, its endpoint and a key prefix.
                let path = [url.prefix, database.prefix].joined(separator: "/")
                let replica: String
                if url.scheme == .file {
                    let directory = FileSystem.absolute(url.bucket) + "/" + path
                    let canonical = Self.canonicalThroughAncestors(directory).split(separator: "/").joined(
                        separator: "/")
                    replica = "file:///\(canonical)"
                } else {
                    let keys = path.split(separator: "/").joined(separator: "/")
                    let endpoint = S3Configuration.normalizedEndpoint(bucket.endpoint ?? url.endpoint)
                    replica = "s3://\(url.bucket) at \(endpoint)/\(keys)"
                }
                // One database through two buckets that lead to one place is a clash too.
                let owner = "'\(FileSystem.absolute(database.path))' (bucket '\(name)')"
                if let other = owners[replica], other != owner {
                    problems.append(
                        "databases \(other) and \(owner) both replicate to '\(replica)' (prefix '\(database.prefix)'): give one of them its own prefix"
                    )
                } else {
                    owners[replica] = owner
                }
            }
        }
        return problems
    }

    /// `path` with symbolic links resolved in its longest existing ancestor (a replica
    /// directory that does not exist yet may lie below a link).
    static func canonicalThroughAncestors(_ path: String) -> String {
        var existing = FileSystem.absolute(path)
        var rest: [String] = []
        while !FileSystem.exists(existing) && existing != "/" {
            rest.insert(FileSystem.fileName(of: existing), at: 0)
            existing = FileSystem.directory(of: existing)
        }
        return ([FileSystem.canonical(existing)] + rest).joined(separator: "/")
    }

    // MARK: Values

    private mutating func checkKeys(_ fields: ConfigSection, allowed: Set<String>, at: String) {
        for key in fields.keys.sorted() where !allowed.contains(key) {
            if Self.unsupportedKeys.contains(key) {
                problems.append("\(at)\(key) is not supported yet by this walship version")
            } else {
                problems.append("\(at)\(key) is not a known key")
            }
        }
    }

    /// A scalar as text with `${NAME}` expanded; nil (and one problem) when it is not a single
    /// value or names an unset variable, so a typed key does not report a second problem.
    private mutating func string(_ value: ConfigValue?, _ key: String) -> String? {
        switch value {
        case nil:
            return nil
        case .list?, .mapping?:
            problems.append("\(key): expected a single value")
            return nil
        case .null?:
            problems.append("\(key): expected a value, found none")
            return nil
        case .scalar(let text)?:
            return expand(text, key)
        }
    }

    private mutating func expand(_ text: String, _ key: String) -> String? {
        var result = ""
        var complete = true
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                problems.append("\(key): unterminated '${' reference")
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            if let value = environment[name] {
                result += value
            } else {
                problems.append("\(key): environment variable '\(name)' is not set")
                complete = false
            }
            rest = rest[rest.index(after: end)...]
        }
        return complete ? result + rest : nil
    }

    private mutating func duration(_ value: ConfigValue?, _ key: String) -> Duration? {
        guard let text = string(value, key) else { return nil }
        do { return try ValueParsing.duration(text, name: key) } catch {
            problems.append("\(key): '\(text)' is not a duration like 100ms, 1s, 15m, 72h or 30d")
            return nil
        }
    }

    private mutating func size(_ value: ConfigValue?, _ key: String) -> Int64? {
        guard let text = string(value, key) else { return nil }
        do { return try ValueParsing.byteSize(text, name: key) } catch {
            problems.append("\(key): '\(text)' is not a size like 512KiB, 16MiB or 1GiB")
            return nil
        }
    }

    private mutating func bool(_ value: ConfigValue?, _ key: String) -> Bool? {
        guard let text = string(value, key) else { return nil }
        guard let flag = Bool(text.lowercased()) else {
            problems.append("\(key): expected true or false")
            return nil
        }
        return flag
    }

    private mutating func integer(_ value: ConfigValue?, _ key: String, minimum: Int) -> Int? {
        guard let text = string(value, key) else { return nil }
        guard let number = Int(text), number >= minimum else {
            problems.append("\(key): expected a whole number of at least \(minimum)")
            return nil
        }
        return number
    }
}
