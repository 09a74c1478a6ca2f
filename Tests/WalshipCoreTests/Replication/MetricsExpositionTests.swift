import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Metrics exposition")
struct MetricsExpositionTests {
    @Test("renders every family once with HELP and TYPE, one sample per replicator, labels escaped")
    func rendersFamilies() throws {
        let first = ReplicationMetrics()
        first.record { values in
            values.observedTxid = 42
            values.observedCommitMs = 1_795_602_667_250
            values.generationsStarted[.continuityLost] = 2
            values.writeLockSeconds = 0.019
            values.pendingSinceMs = 1_795_602_665_000
        }
        let second = ReplicationMetrics()
        let text = MetricsExposition.render(
            [
                .init(database: "/data/app.db", replica: "s3://bucket/app", spoolMaxBytes: 1 << 30, metrics: first),
                .init(database: "/data/we\"ird\\.db", replica: "file:///r", spoolMaxBytes: 10, metrics: second),
            ], version: "1.0", sqliteVersion: "3.40.1", nowMs: 1_795_602_667_500)
        let samples = try LoopbackHTTP.samples(text)
        let labels = "db=\"/data/app.db\",replica=\"s3://bucket/app\""
        #expect(samples["walship_observed_txid{\(labels)}"] == 42)
        #expect(samples["walship_observed_commit_timestamp_seconds{\(labels)}"] == 1_795_602_667.25)
        #expect(samples["walship_generations_started_total{\(labels),reason=\"continuity_lost\"}"] == 2)
        #expect(samples["walship_generations_started_total{\(labels),reason=\"first_start\"}"] == 0)
        #expect(samples["walship_checkpoint_write_lock_seconds_total{\(labels)}"] == 0.019)
        #expect(samples["walship_spool_max_bytes{\(labels)}"] == Double(1 << 30))
        #expect(samples["walship_replication_lag_seconds{\(labels)}"] == 2.5)
        #expect(samples["walship_replication_lag_seconds{db=\"/data/we\\\"ird\\\\.db\",replica=\"file:///r\"}"] == 0)
        #expect(samples["walship_observed_txid{db=\"/data/we\\\"ird\\\\.db\",replica=\"file:///r\"}"] == 0)
        #expect(samples["walship_build_info{version=\"1.0\",sqlite=\"3.40.1\"}"] == 1)
        let lines = text.split(separator: "\n")
        let types = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(Set(types).count == types.count, "a family is declared twice")
        #expect(lines.filter { $0.hasPrefix("# HELP ") }.count == types.count)
        // Every sample belongs to the family declared just before it.
        var family = ""
        for line in lines {
            if line.hasPrefix("# TYPE ") { family = String(line.split(separator: " ")[2]) }
            if !line.hasPrefix("#") { #expect(line.hasPrefix(family + "{"), "\(line) after \(family)") }
        }
    }

    @Test("http-addr forms: host:port, [IPv6]:port, :port; anything else is a usage error")
    func addresses() throws {
        #expect(try MetricsServer.split("127.0.0.1:9090") == ("127.0.0.1", "9090"))
        #expect(try MetricsServer.split("[::1]:9090") == ("::1", "9090"))
        #expect(try MetricsServer.split(":9090") == (nil, "9090"))
        for bad in ["9090", "host:", "host:port", "host:65536", "host:-1"] {
            #expect(throws: WalshipError.self, "\(bad)") { try MetricsServer.split(bad) }
        }
    }
}
