import ArgumentParser
import Foundation
import Logging
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// `walship verify REPLICA_URL [--at T] [--json]`: every object checked, then trial restores.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a replica restores: every object, its segment chains, and trial restores.",
        discussion: """
            Lists the replica once, downloads every object (a few at a time, each to a temporary \
            file deleted once checked) and checks its header, size, payload checksum and \
            compression; then the links of each segment chain, gaps, forks and objects no restore \
            can use; then restores the latest point (and --at T) into a temporary directory, \
            which checks the recorded database checksum and runs PRAGMA integrity_check. Exits 0 \
            only when all is well: 9 for a corrupt, missing or unusable object, 10 for a failed \
            trial restore, 11 for a fork, 8 for an empty replica.
            """
    )

    @OptionGroup var replicaTarget: ReplicaTarget

    @Option(
        name: .long, parsing: .unconditional,
        help: "Also restore the point at this time: RFC 3339, or relative (-15m).")
    var at: String?

    @Flag(name: .long, help: "Print JSON (schema in docs/operations.md).")
    var json = false

    @Option(name: .long, help: "Objects checked in parallel.")
    var parallel: Int = 4

    @Option(name: .long, help: "Where the temporary files go (default: the system's temporary directory).")
    var workDir: String?

    @OptionGroup var global: GlobalOptions

    struct Output: Encodable {
        var replica: String
        var generations: Int
        var objectsChecked: Int
        var bytesChecked: Int64
        var problems: [ReplicaVerifier.Finding]
        var trialRestores: [ReplicaVerifier.TrialRestore]
        var ok: Bool
    }

    func run() async throws {
        Cancellation.installSignalHandlers()
        let logger = try global.bootstrapLogging()
        guard parallel >= 1 else { throw WalshipError(.usage, "invalid --parallel \(parallel): at least 1") }
        let replica = try replicaTarget.replica(logger: logger)
        let inventory = try await ReplicaInventory.load(store: replica.store, layout: replica.layout)
        guard !inventory.isEmpty else {
            throw WalshipError(.replicaEmpty, "replica \(replica.location) holds no objects: nothing to verify")
        }
        var targets: [(String, RestorePlanner.Target)] = [("latest", .latest)]
        if let at {
            // A time outside the restore window is a bad target (exit 6 or 7), before any download.
            let target = RestorePlanner.Target.time(try inventory.time(at))
            _ = try RestorePlanner(inventory: inventory).plan(target)
            targets.append((at, target))
        }
        let directory = try Self.makeWorkDirectory(in: workDir)
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let display = ProgressDisplay(label: "verify", quiet: json || isatty(2) == 0)
        let displayBox = ProgressBox(display)
        let total = inventory.snapshots.count + inventory.segments.count
        var report = try await ReplicaVerifier(replica: replica, logger: logger, parallel: parallel).check(
            inventory: inventory, directory: directory
        ) { objects, bytes in
            displayBox.update(
                fraction: Double(objects) / Double(max(1, total)),
                detail: "\(objects)/\(total) objects, \(ValueParsing.formatBytes(bytes))")
        }
        display.finish()
        for (name, target) in targets {
            let trial = await ReplicaVerifier(replica: replica, logger: logger).trialRestore(
                name, target, inventory: inventory, directory: directory
            ) { Cancellation.isRequested }
            report.restores.append(trial)
            if let error = trial.error {
                report.findings.append(ReplicaVerifier.Finding(kind: .restore, key: nil, message: error))
            }
        }
        let output = Output(
            replica: replica.location, generations: report.generations, objectsChecked: report.objects,
            bytesChecked: report.bytes, problems: report.findings, trialRestores: report.restores,
            ok: report.failure == nil)
        if json { try PruneCommand.printJSON(output) } else { Self.printText(output) }
        if let failure = report.failure {
            throw WalshipError(
                failure,
                "verify found \(report.findings.count) problem\(report.findings.count == 1 ? "" : "s") in \(replica.location) (listed above)"
            )
        }
    }

    static func makeWorkDirectory(in parent: String?) throws -> String {
        let base = parent ?? (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
        var template = Array("\(base)/walship-verify-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw WalshipError(
                .localIO, "cannot create a temporary directory in '\(base)': \(FileSystem.describe(errno: errno))")
        }
        return String(cString: created)
    }

    static func printText(_ output: Output) {
        print("replica          \(output.replica)")
        print("generations      \(output.generations)")
        print("objects checked  \(output.objectsChecked) (\(ValueParsing.formatBytes(output.bytesChecked)))")
        for trial in output.trialRestores {
            let what = trial.target == "latest" ? "latest point" : "point at \(trial.target)"
            if let error = trial.error {
                print("trial restore    \(what): FAILED: \(error)")
            } else {
                let checksum = trial.checksum.map { "checksum \($0) verified" } ?? "no recorded checksum"
                print(
                    "trial restore    \(what): ok, generation \(trial.generation ?? "-") txid \(trial.txid ?? 0), \(checksum), integrity_check ok (\(String(format: "%.1f", trial.seconds)) s)"
                )
            }
        }
        if output.problems.isEmpty {
            print("problems         none")
        } else {
            print("problems         \(output.problems.count)")
            for problem in output.problems { print("  \(problem.kind.rawValue): \(problem.message)") }
        }
    }
}
