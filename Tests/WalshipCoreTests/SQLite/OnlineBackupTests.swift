import Logging
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Online backup")
struct OnlineBackupTests {
    @Test(
        "a stepped backup under a writer committing every few milliseconds equals the source at one transaction boundary"
    )
    func steppedBackupUnderConcurrentCommitsIsConsistent() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let sourcePath = directory.file("source.db")
        try LedgerDatabase.create(at: sourcePath, rows: 4000, payloadBytes: 1000)

        let writer = BackgroundWriter(path: sourcePath, interval: .milliseconds(1))
        // Let the writer get going so commits overlap the whole copy.
        while writer.commits < 20 { OnlineBackup.sleep(.milliseconds(1)) }

        let source = try Connection.openObserver(path: sourcePath)
        try source.beginReadTransaction()
        let commitsAtStart = writer.commits
        let copyPath = directory.file("copy.db")
        let copy = try Connection(path: copyPath)
        var progressReports: [OnlineBackup.Progress] = []
        let result = try OnlineBackup(stepPages: 8, sleepBetweenSteps: .milliseconds(2)).copy(
            from: source, to: copy, progress: { progressReports.append($0) })
        let commitsAtEnd = writer.commits
        try source.rollback()
        source.close()
        copy.close()
        let total = try writer.stop()

        // The test only means something if the writer really committed during the copy.
        #expect(
            commitsAtEnd - commitsAtStart > 20,
            "writer committed \(commitsAtEnd - commitsAtStart) times during the copy")
        #expect(result.steps > 100)
        #expect(progressReports.count == result.steps)
        #expect(progressReports.last?.remainingPages == 0)
        #expect(progressReports.first.map { $0.remainingPages < $0.totalPages } == true)

        let copied = try LedgerDatabase.verifiedTransactionCount(at: copyPath)
        // The copy is the snapshot of the read transaction: no later commit leaked into it.
        #expect(copied >= 4000 + Int64(commitsAtStart) - 1 && copied <= 4000 + Int64(commitsAtStart) + 1)
        #expect(copied < 4000 + Int64(total))
        try IntegrityCheck.verify(databaseAt: copyPath)
    }

    @Test("copy without an open read transaction on the source is refused")
    func copyRequiresReadTransaction() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let sourcePath = directory.file("source.db")
        try LedgerDatabase.create(at: sourcePath, rows: 10)
        let source = try Connection.openObserver(path: sourcePath)
        let copy = try Connection(path: directory.file("copy.db"))
        #expect(throws: WalshipError.self) {
            _ = try OnlineBackup().copy(from: source, to: copy)
        }
    }

    @Test("cancelling stops the copy with the cancelled code")
    func cancellationStopsCopy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let sourcePath = directory.file("source.db")
        try LedgerDatabase.create(at: sourcePath, rows: 500)
        let source = try Connection.openObserver(path: sourcePath)
        try source.beginReadTransaction()
        let copy = try Connection(path: directory.file("copy.db"))
        var steps = 0
        do {
            _ = try OnlineBackup(stepPages: 4).copy(
                from: source, to: copy, isCancelled: { steps >= 3 }, progress: { _ in steps += 1 })
            Issue.record("copy finished although cancelled")
        } catch let error as WalshipError {
            #expect(error.code == .cancelled)
        }
        #expect(steps == 3)
    }
}
