import Foundation
import Glibc
import Logging
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

    /// docs/metrics.md's table names every family `/metrics` serves (and no other),
    /// and every generation reason label.
    @Test("the metrics table in docs/metrics.md matches what /metrics serves")
    func docsListEveryFamily() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/metrics.md").path
        let docs = try String(contentsOfFile: path, encoding: .utf8)
        let table = docs.components(separatedBy: "\n").filter { $0.hasPrefix("| `walship_") }
        var documented: Set<String> = []
        for row in table {
            let cell = row.split(separator: "|")[0]
            for name in cell.split(separator: "`").filter({ $0.hasPrefix("walship_") }) {
                documented.insert(String(name.split(separator: "{")[0]))
            }
        }
        let text = MetricsExposition.render(
            [.init(database: "/d.db", replica: "file:///r", spoolMaxBytes: 1, metrics: ReplicationMetrics())],
            version: "1.0", sqliteVersion: "3.40.1", nowMs: 0)
        let served = Set(
            text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        #expect(served.subtracting(documented).isEmpty, "not in docs: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "not served: \(documented.subtracting(served).sorted())")
        let reasons = table.first { $0.contains("walship_generations_started_total") } ?? ""
        for reason in ObjectHeader.GenerationReason.allCases where reason != .none {
            #expect(reasons.contains("`\(reason.label)`"), "reason \(reason.label) is not in the docs' table")
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

@Suite("Metrics endpoint", .serialized)
struct MetricsServerTests {
    /// A raw connection to the server that sends `bytes` (maybe nothing) and keeps the socket open.
    static func connect(port: UInt16, sending bytes: String = "") -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if !bytes.isEmpty { _ = Array(bytes.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
        return fd
    }

    static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("idle and half-sent connections do not hold the endpoint; bare-LF and absolute-form requests are answered")
    func slowClientsDoNotBlock() throws {
        let server = try MetricsServer.start(address: "127.0.0.1:0", logger: Logger(label: "test")) { "m 1\n" }
        defer { server.close() }
        let idle = (0..<6).map { _ in Self.connect(port: server.port) }
        let partial = Self.connect(port: server.port, sending: "GET /metrics HTTP/1.1\r\nHost: x\r\n")
        defer { (idle + [partial]).forEach { close($0) } }
        let clock = ContinuousClock()
        let started = clock.now
        let response = try LoopbackHTTP.request(port: server.port, path: "/healthz")
        #expect(response.status == 200)
        // Answered at once, not after the 5 s each waiting connection is allowed (5x margin).
        #expect(clock.now - started < .seconds(1))
        let bareLF = Self.connect(port: server.port, sending: "GET /metrics HTTP/1.0\n\n")
        defer { close(bareLF) }
        #expect(Self.readAll(bareLF).hasSuffix("\r\n\r\nm 1\n"))
        let absolute = Self.connect(port: server.port, sending: "GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n")
        defer { close(absolute) }
        #expect(Self.readAll(absolute).hasPrefix("HTTP/1.1 200 OK"))
        // The partial request is dropped once its 5 s are up.
        #expect(Self.readAll(partial).isEmpty)
    }

    @Test("request heads end at an empty line, with CRLF or bare LF")
    func requestHeads() {
        #expect(MetricsServer.headIsComplete(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)))
        #expect(MetricsServer.headIsComplete(Array("GET / HTTP/1.0\n\n".utf8)))
        #expect(!MetricsServer.headIsComplete(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8)))
        #expect(!MetricsServer.headIsComplete(Array("GET / HTTP/1.1\r\n".utf8)))
    }

    @Test(":PORT listens on IPv6 and IPv4 alike")
    func everyInterface() throws {
        let server = try MetricsServer.start(address: ":0", logger: Logger(label: "test")) { "m 1\n" }
        defer { server.close() }
        #expect(try LoopbackHTTP.request(port: server.port, path: "/metrics").body == "m 1\n")
    }
}
