import Foundation
import Testing
import WalshipTesting

@testable import WalshipCore

extension CLIIntegration {
    /// Restore targets given oddly (issue 14, item 6): each gets a clear answer, and times
    /// before any restore window all get the same one.
    @Suite("walship restore targets")
    struct RestoreTargetTests {
        static func replicated() throws -> TemporaryDirectory {
            let directory = try TemporaryDirectory()
            try LedgerDatabase.create(at: directory.file("app.db"), rows: 5)
            let once = try ReplicateCommandTests.agent(directory, extra: ["--once"])
            #expect(once.wait() == 0, "\(once.log)")
            return directory
        }

        @Test("--txid -1 says a txid is a whole number (exit 2), not that the value is missing")
        func negativeTxid() throws {
            let directory = try Self.replicated()
            defer { directory.remove() }
            let output = try ReplicateCommandTests.restore(directory, ["--txid", "-1"], to: "out.db")
            #expect(output.status == 2, "\(output.stderr)")
            #expect(output.stderr.contains("a txid is a whole number"), "\(output.stderr)")
        }

        @Test(
            "a time before 1970, the epoch itself and -36500d are all outside the restore window (exit 6)",
            arguments: ["1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "-36500d"])
        func timesBeforeTheWindow(at: String) throws {
            let directory = try Self.replicated()
            defer { directory.remove() }
            let output = try ReplicateCommandTests.restore(directory, ["--at", at], to: "out.db")
            #expect(output.status == 6, "\(output.stderr)")
            #expect(output.stderr.contains("outside the restore window"), "\(output.stderr)")
        }

        @Test("--at -100000000h says the duration is out of range (exit 2)")
        func hugeRelativeTime() throws {
            let directory = try Self.replicated()
            defer { directory.remove() }
            let output = try ReplicateCommandTests.restore(directory, ["--at", "-100000000h"], to: "out.db")
            #expect(output.status == 2, "\(output.stderr)")
            #expect(output.stderr.contains("out of range"), "\(output.stderr)")
        }
    }
}
