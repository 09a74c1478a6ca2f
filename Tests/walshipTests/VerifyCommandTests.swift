import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Issue 19 (item 3): `walship verify` passes on a healthy replica and fails, naming the
    /// object, on a flipped bit, a deleted middle segment and a truncated snapshot.
    @Suite("walship verify")
    struct VerifyCommandTests {
        /// A replica of one generation: a snapshot and `segments` segments of 3 commits each
        /// (`--once` runs while the application keeps its WAL). Returns the keys, oldest first.
        static func replica(
            _ directory: TemporaryDirectory, segments: Int = 4
        ) throws -> (
            snapshot: String, segments: [String]
        ) {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 20)
            let app = try Connection(path: database)
            defer { app.close() }
            // A commit first: later ones go into the same WAL, which proves continuity between runs.
            try LedgerDatabase.commitNext(on: app)
            let once = [
                "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--once",
            ]
            #expect(try WalshipBinary.run(once).status == 0)
            for _ in 0..<segments {
                for _ in 0..<3 { try LedgerDatabase.commitNext(on: app, payloadBytes: 2000) }
                let run = try WalshipBinary.run(once)
                #expect(run.status == 0, "\(run.stderr)")
            }
            let files = try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica")).sorted()
            let snapshots = files.filter { $0.hasSuffix(".snapshot") }
            #expect(snapshots.count == 1, "\(files)")
            return (try #require(snapshots.first), files.filter { $0.hasSuffix(".segment") })
        }

        static func verify(_ directory: TemporaryDirectory, _ extra: [String] = []) throws -> CommandRunner.Output {
            try WalshipBinary.run(["verify", ReplicateCommandTests.replicaURL(directory)] + extra)
        }

        @Test("a healthy replica passes: every object checked, the latest point and a time restored")
        func healthyReplicaPasses() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, segments) = try Self.replica(directory)
            #expect(segments.count == 4)
            let result = try Self.verify(
                directory,
                ["--at", Timestamp.format(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000)), "--json"])
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let output = try #require(
                try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(output["objects_checked"] as? Int == 5)
            #expect(output["ok"] as? Bool == true)
            let restores = try #require(output["trial_restores"] as? [[String: Any]])
            #expect(restores.count == 2)
            #expect(restores.allSatisfy { $0["error"] == nil && $0["checksum"] != nil }, "\(restores)")
            #expect(!result.stdout.contains("\\/"), "JSON escapes slashes: \(result.stdout)")
        }

        @Test("a flipped bit in a segment fails with exit 9 and names the object")
        func flippedBitFails() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, segments) = try Self.replica(directory)
            let path = directory.file("replica/\(segments[1])")
            var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count - 10] ^= 0x04
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let result = try Self.verify(directory)
            #expect(result.status == 9, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("corrupt"), "\(result.stdout)")
            #expect(result.stdout.contains(URL(fileURLWithPath: segments[1]).lastPathComponent), "\(result.stdout)")
        }

        @Test("a deleted middle segment fails with exit 9 and names the missing txids")
        func deletedSegmentFails() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, segments) = try Self.replica(directory)
            try FileManager.default.removeItem(atPath: directory.file("replica/\(segments[1])"))
            let result = try Self.verify(directory)
            #expect(result.status == 9, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("gap: generation"), "\(result.stdout)")
            #expect(result.stdout.contains("lacks the segments of txids"), "\(result.stdout)")
        }

        @Test("a truncated snapshot fails with exit 9, names it, and the trial restore fails too")
        func truncatedSnapshotFails() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (snapshot, _) = try Self.replica(directory)
            let path = directory.file("replica/\(snapshot)")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
            let result = try Self.verify(directory)
            #expect(result.status == 9, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains(URL(fileURLWithPath: snapshot).lastPathComponent), "\(result.stdout)")
            #expect(result.stdout.contains("trial restore    latest point: FAILED"), "\(result.stdout)")
        }

        @Test("an empty replica exits 8")
        func emptyReplica() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let result = try Self.verify(directory)
            #expect(result.status == 8, "\(result.stdout)\(result.stderr)")
        }

        /// Two generations, each a snapshot and three segments (the second started by a run
        /// without the first one's state). Returns the replica's files per generation, oldest first.
        static func twoGenerations(_ directory: TemporaryDirectory) throws -> [[String]] {
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 20)
            let app = try Connection(path: database)
            defer { app.close() }
            try LedgerDatabase.commitNext(on: app)
            for state in ["state", "state-2"] {
                let once = [
                    "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                    directory.file(state), "--once",
                ]
                #expect(try WalshipBinary.run(once).status == 0)
                for _ in 0..<3 {
                    for _ in 0..<2 { try LedgerDatabase.commitNext(on: app, payloadBytes: 2000) }
                    #expect(try WalshipBinary.run(once).status == 0)
                }
            }
            let files = try FileManager.default.subpathsOfDirectory(atPath: directory.file("replica")).sorted()
                .filter { $0.hasSuffix(".snapshot") || $0.hasSuffix(".segment") }
            let generations = Set(files.map { $0.split(separator: "/")[1] }).sorted()
            #expect(generations.count == 2, "\(files)")
            return generations.map { generation in files.filter { $0.split(separator: "/")[1] == generation } }
        }

        @Test(
            "an empty first snapshot of an older generation is named by verify (exit 9), and does not stop restore, list or prune"
        )
        func corruptOlderSnapshotIsContained() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let generations = try Self.twoGenerations(directory)
            let snapshot = try #require(generations[0].first { $0.hasSuffix(".snapshot") })
            try Data().write(to: URL(fileURLWithPath: directory.file("replica/\(snapshot)")))
            let verify = try Self.verify(directory, ["--json"])
            #expect(verify.status == 9, "\(verify.stdout)\(verify.stderr)")
            #expect(verify.stdout.contains(URL(fileURLWithPath: snapshot).lastPathComponent), "\(verify.stdout)")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            let list = try WalshipBinary.run(["list", ReplicateCommandTests.replicaURL(directory), "--json"])
            #expect(list.status == 0, "\(list.stderr)")
            let prune = try WalshipBinary.run(
                ["prune", ReplicateCommandTests.replicaURL(directory), "--retention", "1s", "--retention-grace", "0s"])
            #expect(prune.status == 0, "\(prune.stderr)")
        }

        @Test("the newest generation's snapshot deleted: verify names its segments as unusable (exit 9)")
        func newestSnapshotDeleted() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let generations = try Self.twoGenerations(directory)
            let snapshot = try #require(generations[1].first { $0.hasSuffix(".snapshot") })
            try FileManager.default.removeItem(atPath: directory.file("replica/\(snapshot)"))
            let verify = try Self.verify(directory)
            #expect(verify.status == 9, "\(verify.stdout)\(verify.stderr)")
            #expect(verify.stdout.contains("no snapshot"), "\(verify.stdout)")
        }

        @Test(
            "the segments right after an older generation's snapshot deleted: verify names the points it cannot reach (exit 9)"
        )
        func holeAfterSnapshot() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let generations = try Self.twoGenerations(directory)
            let first = try #require(generations[0].first { $0.hasSuffix(".segment") })
            try FileManager.default.removeItem(atPath: directory.file("replica/\(first)"))
            let verify = try Self.verify(directory)
            #expect(verify.status == 9, "\(verify.stdout)\(verify.stderr)")
            #expect(verify.stdout.contains("cannot be restored"), "\(verify.stdout)")
        }
    }
}
