import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 19 (item 3): the agent's `verify-interval`.
    @Suite("scheduled verify in the agent")
    struct ScheduledVerifyTests {
        static func metric(_ name: String, port: UInt16) throws -> Double? {
            let samples = try LoopbackHTTP.samples(try LoopbackHTTP.request(port: port, path: "/metrics").body)
            return samples.first { $0.key.hasPrefix(name + "{") }?.value
        }

        /// Waits until the metric reaches `value` (30 s at most); returns its last value.
        static func waitForMetric(_ name: String, port: UInt16, atLeast value: Double) async throws -> Double? {
            let deadline = ContinuousClock.now + .seconds(30)
            var last: Double?
            while ContinuousClock.now < deadline {
                last = try metric(name, port: port)
                if let last, last >= value { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            return last
        }

        @Test(
            "verify-interval checks new objects and restores the latest point while the replica changes, makes no request while it does not, and reports a damaged object on the status page and in the metrics"
        )
        func scheduledVerify() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try ReplicateCommandTests.replicatedLedger(
                directory, rows: 5, extra: ["--http-addr", "127.0.0.1:0", "--verify-interval", "1s"])
            defer {
                app.close()
                agent.stop()
            }
            let port = try #require(agent.httpPort)
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app) }
            #expect(try await Self.waitForMetric("walship_shipped_txid", port: port, atLeast: 5) == 5)
            // The first verify after those uploads passes and restores txid 5.
            var verify: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let status = try StatusPageTests.database(try StatusPageTests.status(port: port))
                verify = status["lastVerify"] as? [String: Any] ?? [:]
                if (verify["trialRestore"] as? [String: Any])?["txid"] as? Int == 5 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(verify["ok"] as? Bool == true, "\(verify)")
            #expect((verify["objectsKnown"] as? Int ?? 0) >= 2, "\(verify)")
            #expect(try Self.metric("walship_verify_last_success_timestamp_seconds", port: port) ?? 0 > 0)
            #expect(try Self.metric("walship_verify_failures_total", port: port) == 0)
            #expect(agent.log.contains("verified the replica"))

            // Idle: no upload, so no verify (and no request) for three intervals.
            let runs = try #require(try Self.metric("walship_verify_runs_total", port: port))
            try await Task.sleep(for: .seconds(3.5))
            #expect(try Self.metric("walship_verify_runs_total", port: port) == runs)

            // A flipped bit in the newest segment: the next verify's trial restore reads it.
            let segments = try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica"))
                .filter { $0.hasSuffix(".segment") }.sorted()
            let newest = directory.file("replica/" + segments.last!)
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: newest)))
            bytes[bytes.count - 10] ^= 0x04
            try Data(bytes).write(to: URL(fileURLWithPath: newest))
            try LedgerDatabase.commitNext(on: app)
            #expect(try await Self.waitForMetric("walship_verify_failures_total", port: port, atLeast: 1) == 1)
            let failed = try #require(
                try StatusPageTests.database(try StatusPageTests.status(port: port))["lastVerify"] as? [String: Any])
            #expect(failed["ok"] as? Bool == false, "\(failed)")
            let problems = failed["problems"] as? [[String: Any]] ?? []
            #expect(problems.contains { ($0["message"] as? String)?.contains(segments.last!) == true }, "\(problems)")
            #expect(agent.log.contains("verify found problems in the replica"))
            let page = try LoopbackHTTP.request(port: port, path: "/").body
            #expect(page.contains("FAILED"))
            #expect(agent.isRunning, "a failed verify never ends the agent")
        }

        @Test("objects and a trial restore larger than verify-max-bytes are skipped, and the result says so")
        func maxBytesSkips() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, app, agent) = try ReplicateCommandTests.replicatedLedger(
                directory, rows: 5,
                extra: ["--http-addr", "127.0.0.1:0", "--verify-interval", "1s", "--verify-max-bytes", "100"])
            defer {
                app.close()
                agent.stop()
            }
            let port = try #require(agent.httpPort)
            try LedgerDatabase.commitNext(on: app)
            var verify: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline && verify.isEmpty {
                let status = try StatusPageTests.database(try StatusPageTests.status(port: port))
                verify = status["lastVerify"] as? [String: Any] ?? [:]
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(verify["ok"] as? Bool == true, "\(verify)")
            #expect((verify["objectsSkipped"] as? [String])?.isEmpty == false, "\(verify)")
            let trial = try #require(verify["trialRestore"] as? [String: Any], "\(verify)")
            #expect((trial["skipped"] as? String)?.contains("verify-max-bytes") == true, "\(trial)")
            #expect(agent.log.contains("verify skipped its trial restore"))
        }

        @Test("verify-interval and verify-max-bytes are checked like every setting")
        func settingsAreChecked() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for bad in [["--verify-interval", "0s"], ["--verify-interval", "soon"], ["--verify-max-bytes", "lots"]] {
                let run = try WalshipBinary.run(
                    ["replicate", directory.file("app.db"), "file://\(directory.file("r"))"] + bad)
                #expect(run.status == 2, "\(bad): \(run.stderr)")
                #expect(run.stderr.contains(bad[0]), "\(bad): \(run.stderr)")
            }
        }
    }
}
