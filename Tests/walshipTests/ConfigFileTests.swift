import Foundation
import Testing
import WalshipCore
import WalshipTesting

@testable import walship

@Suite("Configuration file")
struct ConfigFileTests {
    static let environment = [
        "S3_ENDPOINT": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    ]

    @Test("walship.example.yml parses, with ${ENV} expanded and per-database settings resolved")
    func exampleParses() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("walship.example.yml").path
        let configuration = try ConfigFile.load(path: path, environment: Self.environment)
        #expect(configuration.databases.count == 2)
        #expect(configuration.httpAddress == "127.0.0.1:9090")
        let app = try configuration.database(named: "/var/lib/app/app.db")
        #expect(app.prefix == "app")
        #expect(app.settings().walMaxFrames == 1000)
        #expect(app.settings().snapshotInterval == .seconds(86400))
        #expect(app.settings(forBucket: "primary").retention == .seconds(30 * 86400))
        #expect(app.settings(forBucket: "local").retention == .seconds(72 * 3600))
        let bucket = try configuration.bucket(for: app)
        #expect(bucket.endpoint == "http://127.0.0.1:9000")
        #expect(bucket.secretAccessKey == "s3cr3t")
        #expect(bucket.pathStyle == true)
        let jobs = try configuration.database(named: "jobs")
        #expect(jobs.prefix == "jobs")
        #expect(try configuration.bucket(for: jobs).url == "file:///var/backups/walship")
        // retention: none never deletes.
        var decoder = ConfigFile(environment: [:])
        let none = try decoder.decode(
            """
            buckets:
              b: {url: "file:///tmp/x", retention: none}
            databases:
              - {path: /srv/app.db, bucket: b}
            """, path: "walship.yml")
        #expect(try none.database(named: "/srv/app.db").settings().retention == nil)
    }

    @Test(
        "a database with several buckets gets each bucket's settings, overridden by its own; bucket names are checked")
    func severalBuckets() throws {
        let text = """
            buckets:
              near:
                url: file:///tmp/near
                sync-interval: 250ms
                compression: gzip
              far:
                url: s3://far-bucket/base
                snapshot-interval: 6h
            databases:
              - path: /data/a.db
                buckets: [near, far]
                wal-max-frames: 500
              - path: /data/b.db
                buckets: [far]
                sync-interval: 2s
            """
        var decoder = ConfigFile(environment: [:])
        let configuration = try decoder.decode(text, path: "walship.yml")
        let a = try configuration.database(named: "/data/a.db")
        #expect(a.bucketNames == ["near", "far"])
        #expect(a.settings(forBucket: "near").syncInterval == .milliseconds(250))
        #expect(a.settings(forBucket: "near").compression == .gzip)
        #expect(a.settings(forBucket: "far").syncInterval == .seconds(1))
        #expect(a.settings(forBucket: "far").snapshotInterval == .seconds(6 * 3600))
        #expect(a.settings(forBucket: "far").compression == .zstd)
        #expect(a.settings(forBucket: "near").walMaxFrames == 500 && a.settings(forBucket: "far").walMaxFrames == 500)
        #expect(a.settings() == a.settings(forBucket: "near"), "the first bucket is the default")
        #expect(try configuration.bucket(for: a).name == "near")
        #expect(try configuration.bucket(for: a, named: "far").url == "s3://far-bucket/base")
        #expect(try configuration.database(named: "b").settings().syncInterval == .seconds(2))
        // Each bucket of a database has its own state directory; a database with one keeps the plain one.
        let plain = ReplicaFactory.stateDirectory(option: "/state", databasePath: "/data/a.db")
        #expect(
            ReplicaFactory.stateDirectory(
                option: "/state", database: a, bucket: try configuration.bucket(for: a, named: "far")) == plain
                + "/replicas/far"
        )
        let b = try configuration.database(named: "b")
        #expect(
            ReplicaFactory.stateDirectory(option: "/state", database: b, bucket: try configuration.bucket(for: b))
                == ReplicaFactory.stateDirectory(option: "/state", databasePath: "/data/b.db"))

        var bad = ConfigFile(environment: [:])
        #expect(throws: WalshipError.self) {
            _ = try bad.decode("buckets:\n  \"my bucket\":\n    url: file:///tmp/x\ndatabases: []\n", path: "w.yml")
        }
    }

    @Test("every problem is reported at once: unknown keys, unsupported keys, unset variables, bad values")
    func problemsReportedTogether() throws {
        let text = """
            state-dir:
            colour: blue
            http-addr: 9090
            buckets:
              b:
                url: s3://bucket/p
                secret-access-key: ${MISSING_SECRET}
                access-key-id: AK
                encryption-key-file: /k
                retention: forever
                sync-interval: soon
            databases:
              - path: /data/a.db
                buckets: [b, nope, b]
                wal-max-frames: -3
              - path: /data/a.db
                bucket: b
            """
        var decoder = ConfigFile(environment: [:])
        do {
            _ = try decoder.decode(text, path: "walship.yml")
            Issue.record("a bad configuration was accepted")
        } catch let error as WalshipError {
            #expect(error.code == .usage)
            for fragment in [
                "colour is not a known key", "encryption-key-file is not supported yet", "retention: 'forever'",
                "'MISSING_SECRET' is not set",
                "sync-interval: 'soon'", "no bucket named 'nope'", "wal-max-frames", "listed more than once",
                "'b' is named more than once", "http-addr: invalid http-addr '9090'",
                "state-dir: expected a value, found none",
            ] {
                #expect(error.message.contains(fragment), "missing '\(fragment)' in: \(error.message)")
            }
        }
    }

    @Test("an unset variable is one problem for its key, not a second one about the empty value (found by review)")
    func unsetVariableIsOneProblem() throws {
        let text = """
            buckets:
              b:
                url: ${UNSET_URL}
              c:
                url: s3://bucket/p
                sync-interval: ${UNSET_INTERVAL}
                snapshot-interval: 1${UNSET_UNIT}
            databases:
              - path: /data/a.db
                bucket: ${UNSET_BUCKET}
            """
        var decoder = ConfigFile(environment: [:])
        do {
            _ = try decoder.decode(text, path: "walship.yml")
            Issue.record("a configuration with unset variables was accepted")
        } catch let error as WalshipError {
            for name in ["UNSET_URL", "UNSET_INTERVAL", "UNSET_BUCKET", "UNSET_UNIT"] {
                #expect(error.message.contains("'\(name)' is not set"), "\(error.message)")
            }
            for fragment in ["url is required", "is not a duration", "name at least one bucket", "no bucket named"] {
                #expect(!error.message.contains(fragment), "second problem '\(fragment)' in: \(error.message)")
            }
        }
    }

    @Test("values of every YAML shape: numbers and flags as written, and each wrong shape reported with the rest")
    func valueShapes() throws {
        var decoder = ConfigFile(environment: [:])
        let good = try decoder.decode(
            """
            restore-if-missing: true
            buckets:
              b:
                url: file:///tmp/walship-shapes
                path-style: False
                upload-concurrency: 8
            databases:
              - path: /data/a.db
                bucket: b
                wal-max-frames: 250
                checkpoint-restart: "false"
            """, path: "walship.yml")
        #expect(good.restoreIfMissing == true)
        #expect(good.buckets["b"]?.pathStyle == false && good.buckets["b"]?.uploadConcurrency == 8)
        let settings = try good.database(named: "/data/a.db").settings()
        #expect(settings.walMaxFrames == 250 && settings.checkpointRestart == false)

        let shapes = Self.problems(
            """
            log-level: [debug]
            buckets:
              b: s3://not-a-mapping
              c:
                url: {a: 1}
              d:
                url: file:///tmp/walship-shapes
                path-style: maybe
            databases:
              - just-a-path.db
              - path: /data/a.db
                buckets: c
            """)
        for fragment in [
            "log-level: expected a single value", "buckets.b: expected a mapping",
            "buckets.c.url: expected a single value",
            "buckets.d.path-style: expected true or false", "databases[0]: expected a mapping",
            "databases[1].buckets: expected a list of bucket names",
        ] {
            #expect(shapes.contains(fragment), "missing '\(fragment)' in: \(shapes)")
        }
        #expect(
            Self.problems("buckets: [a, b]\ndatabases: {}\n").contains("buckets: expected a mapping of bucket names"))
        #expect(Self.problems("buckets: {}\ndatabases: {}\n").contains("databases: expected a list"))
        #expect(Self.problems("- a\n- b\n").contains("must be a mapping with 'buckets' and 'databases'"))
        #expect(Self.problems("").contains("must be a mapping with 'buckets' and 'databases'"))
        #expect(Self.problems("buckets: [unclosed\n").contains("is not valid YAML"))
    }

    @Test("walship replicate --config with a bad file exits 2 and names the problem")
    func badConfigExitsTwo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "buckets:\n  b:\n    url: ftp://x\ndatabases: []\n".write(
            toFile: directory.path + "/w.yml", atomically: true, encoding: .utf8)
        let output = try WalshipBinary.run(["replicate", "--config", directory.path + "/w.yml"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("use s3://bucket/prefix or file:///absolute/dir"), "\(output.stderr)")
    }

    static func problems(_ text: String) -> String {
        var decoder = ConfigFile(environment: [:])
        do {
            _ = try decoder.decode(text, path: "walship.yml")
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test(
        "two databases that resolve to one replica are a configuration error naming both: the same file name in one bucket, or the same prefix by hand (issue 16)"
    )
    func twoDatabasesOneReplica() {
        let sameName = Self.problems(
            """
            buckets:
              s3:
                url: s3://backups/prod
            databases:
              - path: /srv/a/app.db
                bucket: s3
              - path: /srv/b/app.db
                bucket: s3
            """)
        #expect(
            sameName.contains("'/srv/a/app.db' (bucket 's3') and '/srv/b/app.db' (bucket 's3') both replicate"),
            "\(sameName)")
        let samePrefix = Self.problems(
            """
            buckets:
              dir:
                url: file:///var/backups/walship
            databases:
              - path: /srv/app.db
                bucket: dir
                prefix: shared
              - path: /srv/jobs.db
                bucket: dir
                prefix: shared
            """)
        #expect(
            samePrefix.contains("'/srv/app.db' (bucket 'dir') and '/srv/jobs.db' (bucket 'dir') both replicate"),
            "\(samePrefix)")
        // Different prefixes, or the same prefix in different buckets, are fine.
        let distinct = Self.problems(
            """
            buckets:
              one:
                url: s3://backups/one
              two:
                url: s3://backups/two
            databases:
              - path: /srv/a/app.db
                bucket: one
              - path: /srv/b/app.db
                bucket: two
            """)
        #expect(distinct.isEmpty, "\(distinct)")
    }

    @Test(
        "two databases whose bucket URL and prefix split one replica differently, or reach one directory through a symbolic link, are a configuration error"
    )
    func oneReplicaReachedTwoWays() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("rep"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: directory.file("link"), withDestinationPath: directory.file("rep"))
        let split = Self.problems(
            """
            buckets:
              one: {url: "file://\(directory.file("rep"))"}
              two: {url: "file://\(directory.file("rep/app"))"}
              s3a: {url: "s3://backups/prod"}
              s3b: {url: "s3://backups/prod/jobs"}
            databases:
              - {path: /srv/a/app.db, bucket: one, prefix: app}
              - {path: /srv/b/app.db, bucket: two, prefix: ""}
              - {path: /srv/c/jobs.db, bucket: s3a}
              - {path: /srv/d/other.db, bucket: s3b, prefix: ""}
            """)
        #expect(split.contains("'/srv/a/app.db' (bucket 'one') and '/srv/b/app.db' (bucket 'two')"), "\(split)")
        #expect(split.contains("'/srv/c/jobs.db' (bucket 's3a') and '/srv/d/other.db' (bucket 's3b')"), "\(split)")
        let linked = Self.problems(
            """
            buckets:
              one: {url: "file://\(directory.file("rep"))"}
              two: {url: "file://\(directory.file("link"))"}
            databases:
              - {path: /srv/a/app.db, bucket: one}
              - {path: /srv/b/app.db, bucket: two}
            """)
        #expect(
            linked.contains("'/srv/a/app.db' (bucket 'one') and '/srv/b/app.db' (bucket 'two') both replicate"),
            "\(linked)")
        // One database through two buckets that lead to one place; an endpoint written two ways;
        // a replica directory that does not exist yet below a link.
        let twice = Self.problems(
            """
            buckets:
              one: {url: "s3://backups/p", endpoint: "http://127.0.0.1:9000"}
              two: {url: "s3://backups/p", endpoint: "HTTP://127.0.0.1:9000/"}
              three: {url: "file://\(directory.file("rep/new"))"}
              four: {url: "file://\(directory.file("link/new"))"}
            databases:
              - {path: /srv/a/app.db, buckets: [one, two]}
              - {path: /srv/c/app.db, bucket: three}
              - {path: /srv/d/app.db, bucket: four}
            """)
        #expect(twice.contains("'/srv/a/app.db' (bucket 'one') and '/srv/a/app.db' (bucket 'two')"), "\(twice)")
        #expect(twice.contains("'/srv/c/app.db' (bucket 'three') and '/srv/d/app.db' (bucket 'four')"), "\(twice)")
    }

    @Test("a prefix with an empty, '.' or '..' segment, or a leading or trailing '/', is a configuration problem")
    func badPrefixes() {
        for prefix in ["x//y", "/x", "x/", "x/../y", "./x"] {
            let text = Self.problems(
                """
                buckets:
                  b: {url: "file:///tmp/x"}
                databases:
                  - {path: /srv/app.db, bucket: b, prefix: "\(prefix)"}
                """)
            #expect(text.contains("prefix '\(prefix)': use path segments"), "\(prefix): \(text)")
        }
        for prefix in ["app", "team/app", "app-1.v2", "my app", "50%off", "a#b"] {
            let text = Self.problems(
                """
                buckets:
                  b: {url: "file:///tmp/x"}
                databases:
                  - {path: /srv/app.db, bucket: b, prefix: "\(prefix)"}
                """)
            #expect(text.isEmpty, "\(prefix): \(text)")
        }
    }

    @Test("a database entry whose path has the wrong type still has its other problems reported (issue 16)")
    func wrongPathTypeReportsTheRest() {
        let text = Self.problems(
            """
            buckets:
              b:
                url: file:///tmp/x
            databases:
              - path: [not, a, path]
                bucket: nowhere
                sync-interval: soon
            """)
        #expect(text.contains("path"), "\(text)")
        #expect(text.contains("no bucket named 'nowhere'"), "\(text)")
        #expect(text.contains("sync-interval"), "\(text)")
    }

    @Test("a bucket URL that cannot round-trip is a configuration problem with its reason (issue 14)")
    func strictBucketURL() {
        let text = Self.problems(
            """
            buckets:
              b:
                url: s3://backups/h/app#one
            databases:
              - path: /srv/app.db
                bucket: b
            """)
        #expect(text.contains("fragment"), "\(text)")
    }
}
