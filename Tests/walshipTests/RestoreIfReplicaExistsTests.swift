import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// `restore --if-replica-exists` in an init container (issue 14, item 3): only a reachable,
    /// empty replica is "nothing to do"; a missing bucket or an unmounted volume is an error.
    @Suite("walship restore --if-replica-exists")
    struct RestoreIfReplicaExistsTests {
        @Test("a missing file:// replica directory exits 4 with or without --if-replica-exists, and writes nothing")
        func missingDirectory() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for extra in [[], ["--if-replica-exists"], ["--if-replica-exists", "--if-db-not-exists"]] {
                let output = try WalshipBinary.run(
                    ["restore", "file://\(directory.file("mnt/backup/walship"))", "-o", directory.file("app.db")]
                        + extra)
                #expect(output.status == 4, "\(extra): \(output.stderr)")
                #expect(output.stderr.contains("does not exist"), "\(output.stderr)")
                #expect(!FileSystem.exists(directory.file("app.db")))
            }
        }

        @Test("a missing bucket exits 4 with or without --if-replica-exists")
        func missingBucket() async throws {
            let server = try await S3TestServer.start(buckets: ["present"])
            defer { server.stop() }
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let environment = server.environment
            for extra in [[], ["--if-replica-exists"]] {
                let output = try WalshipBinary.run(
                    ["restore", "s3://typo-bucket/app", "-o", directory.file("app.db")] + extra,
                    environment: environment)
                #expect(output.status == 4, "\(extra): \(output.stderr)")
                #expect(!FileSystem.exists(directory.file("app.db")))
            }
            // The bucket exists but holds nothing under the prefix: nothing to do.
            let empty = try WalshipBinary.run(
                ["restore", "s3://present/app", "-o", directory.file("app.db"), "--if-replica-exists"],
                environment: environment)
            #expect(empty.status == 0, "\(empty.stderr)")
            #expect(!FileSystem.exists(directory.file("app.db")))
        }

        @Test("a reachable, empty replica directory is nothing to do with --if-replica-exists, exit 8 without it")
        func emptyDirectory() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try FileManager.default.createDirectory(
                atPath: directory.file("replica"), withIntermediateDirectories: true)
            let url = "file://\(directory.file("replica"))"
            let quiet = try WalshipBinary.run(["restore", url, "-o", directory.file("app.db"), "--if-replica-exists"])
            #expect(quiet.status == 0, "\(quiet.stderr)")
            #expect(quiet.stderr.contains("nothing to do"))
            let plain = try WalshipBinary.run(["restore", url, "-o", directory.file("app.db")])
            #expect(plain.status == 8, "\(plain.stderr)")
            #expect(!FileSystem.exists(directory.file("app.db")))
        }
    }
}
