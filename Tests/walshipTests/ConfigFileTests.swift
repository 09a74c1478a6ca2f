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
        let app = try configuration.database(named: "/var/lib/app/app.db")
        #expect(app.prefix == "app")
        #expect(app.settings.walMaxFrames == 1000)
        #expect(app.settings.snapshotInterval == .seconds(86400))
        let bucket = try configuration.bucket(for: app)
        #expect(bucket.endpoint == "http://127.0.0.1:9000")
        #expect(bucket.secretAccessKey == "s3cr3t")
        #expect(bucket.pathStyle == true)
        let jobs = try configuration.database(named: "jobs")
        #expect(jobs.prefix == "jobs")
        #expect(try configuration.bucket(for: jobs).url == "file:///var/backups/walship")
    }

    @Test("every problem is reported at once: unknown keys, unsupported keys, unset variables, bad values")
    func problemsReportedTogether() throws {
        let text = """
            state-dir: /tmp/x
            colour: blue
            buckets:
              b:
                url: s3://bucket/p
                secret-access-key: ${MISSING_SECRET}
                access-key-id: AK
                retention: 72h
                sync-interval: soon
            databases:
              - path: /data/a.db
                buckets: [b, nope]
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
                "colour is not a known key", "retention is not supported yet", "'MISSING_SECRET' is not set",
                "sync-interval: 'soon'", "no bucket named 'nope'", "wal-max-frames", "listed more than once",
                "several buckets is not supported yet",
            ] {
                #expect(error.message.contains(fragment), "missing '\(fragment)' in: \(error.message)")
            }
        }
    }

    @Test("walship replicate --config with a bad file exits 2 and names the problem")
    func badConfigExitsTwo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "buckets:\n  b:\n    url: ftp://x\ndatabases: []\n".write(
            toFile: directory.path + "/w.yml", atomically: true, encoding: .utf8)
        let output = try WalshipBinary.run(["replicate", "--config", directory.path + "/w.yml"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("must start with s3:// or file:///"))
    }
}
