import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

extension CLIIntegration {
    /// Issue 14 (item 4) and issue 16 (item 3): a full disk.
    @Suite("a full disk")
    struct DiskFullTests {
        @Test(
            "no space for the spool is handled like a full spool: the agent lets go of the WAL, keeps running, and starts a new generation once space returns"
        )
        func spoolDiskFull() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let disk = try SmallFileSystem(path: directory.file("state"), size: "3m")
            defer { disk.unmount() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            let agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            // A 6 MB transaction does not fit the spool's 3 MB file system.
            try LedgerDatabase.commitNext(on: app, payloadBytes: 6_000_000)
            #expect(agent.waitForLog("no space left for the spool"), "\(agent.log.suffix(3000))")
            #expect(agent.isRunning, "the agent ended: \(agent.log.suffix(3000))")
            // The application is not held: its WAL can reset (the agent's read chain is gone).
            for _ in 0..<3 { try LedgerDatabase.commitNext(on: app) }
            try app.setBusyTimeout(milliseconds: 2000)
            #expect(try app.checkpoint(.truncate).walFrames == 0)
            try disk.resize("64m")
            #expect(agent.waitForLog("space returned"), "\(agent.log.suffix(3000))")
            #expect(agent.waitForLog("snapshot taken", after: "space returned"), "\(agent.log.suffix(3000))")
            try LedgerDatabase.commitNext(on: app)
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 15)
        }

        @Test(
            "on a file system smaller than the database plus two segment-max-bytes, the agent resumes once space returns; a stop while it waits for space exits 4"
        )
        func smallDiskResumes() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let disk = try SmallFileSystem(path: directory.file("state"), size: "8m")
            defer { disk.unmount() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            for _ in 0..<20 { try LedgerDatabase.commitNext(on: app, payloadBytes: 100_000) }  // About 2 MB.
            var agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("page hashes complete"), "\(agent.log)")
            let filler = directory.file("state/filler")
            _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
            try LedgerDatabase.commitNext(on: app, payloadBytes: 200_000)
            #expect(agent.waitForLog("no space left for the spool"), "\(agent.log.suffix(3000))")
            // Stopped while it waits for space: the last commit is not shipped, and it says so.
            #expect(agent.stop() == 4, "\(agent.log.suffix(3000))")
            #expect(agent.log.contains("stopped while replication was paused"), "\(agent.log.suffix(3000))")
            try FileManager.default.removeItem(atPath: filler)
            // The WAL still holds that commit: the next start ships it in the same generation.
            agent = try ReplicateCommandTests.agent(directory)
            #expect(agent.waitForLog("object uploaded"), "\(agent.log.suffix(3000))")
            // Full again, then space returns on the same 8 MB file system.
            _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
            try LedgerDatabase.commitNext(on: app, payloadBytes: 200_000)
            #expect(agent.waitForLog("no space left for the spool"), "\(agent.log.suffix(3000))")
            try FileManager.default.removeItem(atPath: filler)
            #expect(agent.waitForLog("space returned"), "\(agent.log.suffix(3000))")
            #expect(agent.waitForLog("snapshot taken", after: "space returned"), "\(agent.log.suffix(3000))")
            try LedgerDatabase.commitNext(on: app)
            #expect(agent.stop() == 0, "\(agent.log.suffix(3000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 33)
        }

        /// Found by review: a cron run waited for space forever (holding the database's lock, so
        /// every later run exited 3), both when the first snapshot did not fit and when the disk
        /// filled after one.
        @Test(
            "replicate --once on a full state disk exits 13 at once, and the next run after space returns ships everything"
        )
        func onceOnFullDiskExits() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let disk = try SmallFileSystem(path: directory.file("state"), size: "4m")
            defer { disk.unmount() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let app = try Connection(path: database)
            defer { app.close() }
            for _ in 0..<30 { try LedgerDatabase.commitNext(on: app, payloadBytes: 200_000) }  // About 6 MB.
            let once = [
                "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--once",
            ]
            // The first snapshot does not fit.
            let clock = ContinuousClock()
            var started = clock.now
            var run = try WalshipBinary.run(once)
            #expect(run.status == 13, "\(run.stderr.suffix(2000))")
            #expect(clock.now - started < .seconds(60), "took \(clock.now - started)")
            try disk.resize("64m")
            run = try WalshipBinary.run(once)
            #expect(run.status == 0, "\(run.stderr.suffix(2000))")
            // Full after a snapshot exists.
            let filler = directory.file("state/filler")
            _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k", "status=none"])
            for _ in 0..<5 { try LedgerDatabase.commitNext(on: app, payloadBytes: 60_000) }
            started = clock.now
            run = try WalshipBinary.run(once)
            #expect(run.status == 13, "\(run.stderr.suffix(2000))")
            #expect(clock.now - started < .seconds(60), "took \(clock.now - started)")
            try FileManager.default.removeItem(atPath: filler)
            run = try WalshipBinary.run(once)
            #expect(run.status == 0, "\(run.stderr.suffix(2000))")
            let latest = try ReplicateCommandTests.restore(directory, [], to: "latest.db")
            #expect(latest.status == 0, "\(latest.stderr)")
            #expect(try LedgerDatabase.verifiedTransactionCount(at: directory.file("latest.db")) == 45)
        }

        /// Found by review: the page hashes could not be rewritten on the full disk, which read as
        /// "no page hashes" and started a new generation (a full snapshot at the next run).
        @Test("a full state disk at the start of a run keeps the generation: exit 13, then the next run continues it")
        func fullDiskAtStartKeepsTheGeneration() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let disk = try SmallFileSystem(path: directory.file("state"), size: "2m")
            defer { disk.unmount() }
            let database = directory.file("app.db")
            try LedgerDatabase.create(at: database, rows: 10)
            let once = [
                "replicate", database, ReplicateCommandTests.replicaURL(directory), "--state-dir",
                directory.file("state"), "--once",
            ]
            #expect(try WalshipBinary.run(once).status == 0)
            let app = try Connection(path: database)
            for _ in 0..<50 { try LedgerDatabase.commitNext(on: app) }
            app.close()  // The last connection: the WAL goes into the file and is removed.
            let filler = directory.file("state/filler")
            _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=4k", "status=none"])
            var run = try WalshipBinary.run(once)
            #expect(run.status == 13, "\(run.stderr.suffix(2000))")
            #expect(!run.stderr.contains("new generation"), "\(run.stderr.suffix(2000))")
            try FileManager.default.removeItem(atPath: filler)
            run = try WalshipBinary.run(once)
            #expect(run.status == 0, "\(run.stderr.suffix(2000))")
            #expect(run.stderr.contains("continuing generation"), "\(run.stderr.suffix(2000))")
            #expect(!run.stderr.contains("new generation"), "\(run.stderr.suffix(2000))")
        }

        @Test("walship backup onto a full disk says the disk is full and names the path (exit 13), and leaves nothing")
        func backupDiskFull() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let disk = try SmallFileSystem(path: directory.file("out"), size: "1m")
            defer { disk.unmount() }
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 3000, payloadBytes: 1000)
            for extra in [[], ["--gzip"], ["--zstd"]] {
                let output = try WalshipBinary.run(
                    ["backup", directory.file("app.db"), directory.file("out/app.db") + (extra.isEmpty ? "" : ".z")]
                        + extra)
                #expect(output.status == 13, "\(extra): \(output.stderr)")
                #expect(output.stderr.contains(directory.file("out")), "\(output.stderr)")
                #expect(output.stderr.contains("free"), "\(output.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory.file("out")).isEmpty)
            }
        }
    }
}
