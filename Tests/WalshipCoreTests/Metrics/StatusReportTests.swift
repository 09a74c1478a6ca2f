import Foundation
import Testing

@testable import WalshipCore

@Suite("Status report and page")
struct StatusReportTests {
    static let layout = ReplicaLayout(prefix: "db")
    static let generation = GenerationID(0x1a24_b65c_37b1_e24e)

    /// A replicator's metrics after a start LIST that found one snapshot (txid 0 at 1000 s).
    static func metrics() -> ReplicationMetrics {
        let metrics = ReplicationMetrics()
        metrics.keepInventory()
        let snapshotKey = layout.snapshotKey(generation: generation, usableTxid: 0, fromTxid: 0, takenMs: 1_000_000)
        guard case .snapshot(let snapshot)? = layout.parse(key: snapshotKey, size: 400) else {
            preconditionFailure("the layout parses its own key")
        }
        metrics.attach(ReplicaInventory(snapshots: [snapshot]), layout: layout)
        metrics.record { values in
            values.started = true
            values.generation = generation
            values.observedTxid = 5
            values.walFrames = 10
            values.pageSize = 4096
        }
        return metrics
    }

    static func source(_ metrics: ReplicationMetrics, path: String = "/srv/app.db") -> MetricsExposition.Source {
        MetricsExposition.Source(database: path, replica: "s3://bucket/db", spoolMaxBytes: 1 << 30, metrics: metrics)
    }

    @Test("uploads the agent confirms extend the listing and its restore window; objects retention deleted leave it")
    func listingFollowsUploadsAndPrunes() throws {
        let metrics = Self.metrics()
        let segment = Self.layout.segmentKey(
            generation: Self.generation, firstTxid: 1, lastTxid: 5, firstMs: 1_001_000, lastMs: 1_005_000)
        metrics.recordStored(key: segment, size: 100)
        metrics.recordStored(key: segment, size: 100)  // Already in the store: counted once.
        metrics.recordStored(key: "db/generations/not-an-object", size: 1)
        var report = StatusReport.make([Self.source(metrics)], version: "v", sqliteVersion: "s", ready: true, at: nil)
        var listing = try #require(report.databases.first?.listing)
        #expect(listing.objects == 2)
        #expect(listing.restoreWindow?.latestTxid == 5)
        #expect(report.databases.first?.restoreLatest == "walship restore s3://bucket/db -o ./app-restored.db")
        #expect(report.databases.first.map { $0.walBytes } == Int64(32 + 10 * (24 + 4096)))
        metrics.recordDeleted([segment])
        report = StatusReport.make([Self.source(metrics)], version: "v", sqliteVersion: "s", ready: true, at: nil)
        listing = try #require(report.databases.first?.listing)
        #expect(listing.objects == 1)
        #expect(listing.restoreWindow?.latestTxid == 0)
    }

    @Test("uploads confirmed out of order keep the inventory sorted; an agent without a status page keeps none")
    func inventoryOrderAndMemory() throws {
        let metrics = Self.metrics()
        let later = Self.layout.segmentKey(
            generation: Self.generation, firstTxid: 6, lastTxid: 9, firstMs: 1_006_000, lastMs: 1_009_000)
        let earlier = Self.layout.segmentKey(
            generation: Self.generation, firstTxid: 1, lastTxid: 5, firstMs: 1_001_000, lastMs: 1_005_000)
        metrics.recordStored(key: later, size: 100)
        metrics.recordStored(key: earlier, size: 100)
        metrics.recordStored(key: later, size: 100)
        #expect(metrics.inventory?.segments.map(\.firstTxid) == [1, 6])
        let plain = ReplicationMetrics()
        plain.attach(ReplicaInventory(), layout: Self.layout)
        plain.recordStored(key: earlier, size: 100)
        #expect(plain.inventory == nil)
    }

    @Test("a chosen time gives an absolute --at command (a relative one resolved now), or why it cannot be restored")
    func chosenPoint() throws {
        let metrics = Self.metrics()
        metrics.recordStored(
            key: Self.layout.segmentKey(
                generation: Self.generation, firstTxid: 1, lastTxid: 5, firstMs: 1_001_000, lastMs: 1_005_000),
            size: 100)
        let inside = StatusReport.make(
            [Self.source(metrics)], version: "v", sqliteVersion: "s", ready: true, at: "-3s", nowMs: 1_006_000
        ).databases.first?.point
        #expect(inside?.time == "1970-01-01T00:16:43.000Z")
        #expect(
            inside?.command == "walship restore s3://bucket/db -o ./app-restored.db --at 1970-01-01T00:16:43.000Z")
        #expect(inside?.generation == "\(Self.generation)" && inside?.afterLatest == false)
        let outside = StatusReport.make(
            [Self.source(metrics)], version: "v", sqliteVersion: "s", ready: true, at: "-1h", nowMs: 1_006_000
        ).databases.first?.point
        #expect(outside?.command == nil && outside?.error?.contains("outside the restore window") == true)
        let bad = StatusReport.make(
            [Self.source(metrics)], version: "v", sqliteVersion: "s", ready: true, at: "yesterday", nowMs: 1_006_000
        ).databases.first?.point
        #expect(bad?.error?.contains("invalid time") == true)
    }

    @Test("before its start LIST a database is `starting`, with no listing and no command")
    func starting() {
        let report = StatusReport.make(
            [Self.source(ReplicationMetrics())], version: "v", sqliteVersion: "s", ready: false, at: "-1s")
        let database = report.databases.first
        #expect(database?.state == "starting" && database?.listing == nil && database?.restoreLatest == nil)
        #expect(database?.point == nil)
        #expect(StatusPage.render(report).contains("listed once start-up is done"))
    }

    @Test("the page escapes what it shows, and commands quote words a shell would split")
    func escaping() {
        #expect(StatusPage.escape("<b a=\"x\">&'") == "&lt;b a=&quot;x&quot;&gt;&amp;&#39;")
        let report = StatusReport.make(
            [Self.source(Self.metrics(), path: "/srv/<script>x's.db")], version: "v", sqliteVersion: "s", ready: true,
            at: "\"><script>")
        let page = StatusPage.render(report)
        #expect(!page.contains("<script>"))
        #expect(page.contains("/srv/&lt;script&gt;x&#39;s.db"))
        #expect(Shell.quote("s3://b/p") == "s3://b/p")
        #expect(Shell.quote("/srv/my app.db") == "'/srv/my app.db'")
        #expect(Shell.quote("it's") == "'it'\\''s'")
        #expect(Shell.quote("") == "''")
        #expect(StatusReport.stem(of: "/srv/app.db") == "app" && StatusReport.stem(of: "/srv/.hidden") == ".hidden")
    }

    @Test("query values are form-decoded: percent-escapes, and + as a space")
    func queryDecoding() {
        #expect(MetricsServer.query("/?at=2026-12-06T10%3A31%3A07%2B01%3A00", "at") == "2026-12-06T10:31:07+01:00")
        #expect(MetricsServer.query("/api/v1/status?x=1&at=-15m", "at") == "-15m")
        #expect(MetricsServer.query("/?at=a+b", "at") == "a b")
        #expect(MetricsServer.query("/?at", "at") == "")
        #expect(MetricsServer.query("/", "at") == nil)
    }
}
