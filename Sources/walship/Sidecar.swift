import Foundation
import Logging
import Synchronization
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// `replicate --restore-if-missing`: before replication starts, each database that does not
/// exist is restored from its (first) replica's latest point, as `restore --if-db-not-exists
/// --if-replica-exists` would: an empty replica leaves it missing (the application starts on a
/// fresh database); a replica with a restore point is never skipped; any failure stops
/// everything with its exit status.
enum SidecarStart {
    static func restoreMissing(_ jobs: [ReplicateCommand.Job], logger: Logger) async throws {
        var seen: Set<String> = []
        for job in jobs where seen.insert(job.path).inserted && !FileSystem.exists(job.path) {
            let inventory = try await ReplicaInventory.load(store: job.replica.store, layout: job.replica.layout)
            let planner = RestorePlanner(inventory: inventory)
            let plan: RestorePlanner.Plan
            do {
                plan = try planner.plan(.latest)
            } catch let error as WalshipError where error.code == .replicaEmpty {
                logger.info(
                    "the database does not exist and its replica is empty: the application starts on a fresh database",
                    metadata: ["db.path": "\(job.path)", "replica": "\(job.replica.location)"])
                continue
            }
            let lineage = try await Lineage.load(store: job.replica.store, inventory: inventory)
            if let fork = lineage.fork(containing: plan.generation) {
                throw WalshipError(
                    .fork,
                    "cannot restore '\(job.path)' from \(job.replica.location): generations \(fork.map { "\($0)" }.joined(separator: ", ")) are separate lineages; restore one with walship restore --generation first"
                )
            }
            logger.info(
                "the database does not exist: restoring it from its replica first",
                metadata: ["db.path": "\(job.path)", "replica": "\(job.replica.location)"])
            // A signal during the restore cancels it (exit 130, nothing written): the agent has not
            // started, so there is nothing to ship.
            var options = Restorer.Options()
            options.isCancelled = { EarlySignal.received.load(ordering: .relaxed) }
            let report = try await Restorer(replica: job.replica, options: options, logger: logger)
                .restore(plan, to: job.path)
            // The agent's new generation links to this restore point (a branch, not a fork).
            try RestoredMarker(
                replica: job.replica.location, databaseID: report.databaseID.isKnown ? report.databaseID : nil,
                generation: report.generation, txid: report.txid,
                restoredMs: UInt64(Date().timeIntervalSince1970 * 1000)
            ).save(in: job.databaseDirectory)
            logger.info(
                "restored the database before starting",
                metadata: [
                    "db.path": "\(job.path)", "generation": "\(report.generation)", "restore.txid": "\(report.txid)",
                ])
        }
    }
}

/// The application `replicate --exec` runs beside replication: the command split into words
/// (single and double quotes and backslashes as in a shell, no other shell syntax) and started
/// directly (found on PATH), with walship's standard input, output and error; SIGTERM, SIGINT and
/// SIGHUP sent to walship are passed on to it (one that comes while it is being started, once it
/// runs); when it exits, replication ships what is committed and ends (the service group), and
/// from then on a second signal exits at once (130). Without a shell in between, the signals reach
/// the application itself.
final class Application: Sendable {
    private let pid: pid_t
    private let exit: Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>

    /// The running application's pid, for the signal handlers (which take no context): 0 before
    /// it runs, -1 after it exited.
    private static let running = Atomic<Int32>(0)
    /// A signal that came before the application ran: passed on once it does.
    private static let pending = Atomic<Int32>(0)
    /// Signals walship received (passed on or not).
    private static let received = Atomic<Int>(0)

    private init(pid: pid_t) {
        self.pid = pid
        exit = Mutex((nil, []))
    }

    static func start(_ command: String, logger: Logger) throws -> Application {
        let words = try Self.words(command)
        guard !words.isEmpty else { throw WalshipError(.usage, "--exec needs a command") }
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            signal(signalNumber) { signalNumber in
                let count = Application.received.add(1, ordering: .sequentiallyConsistent).newValue
                let pid = Application.running.load(ordering: .sequentiallyConsistent)
                if pid > 0 {
                    kill(pid, signalNumber)
                } else if pid == 0 {
                    Application.pending.store(signalNumber, ordering: .sequentiallyConsistent)
                } else if count > 1 {
                    // The application has exited and replication is shipping what it committed:
                    // a second signal stops that at once.
                    _exit(130)
                }
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The application gets default signal handling and no blocked signals.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signalNumber in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signalNumber) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let arguments = words.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        let result = posix_spawnp(&pid, words[0], nil, &attributes, arguments, environ)
        guard result == 0 else {
            throw WalshipError(.usage, "--exec: cannot start '\(words[0])': \(String(cString: strerror(result)))")
        }
        let child = pid
        let application = Application(pid: child)
        running.store(child, ordering: .sequentiallyConsistent)
        logger.info("started the application", metadata: ["exec.pid": "\(child)", "exec.command": "\(words[0])"])
        // A signal that came while walship started, or while the application was being started,
        // counts.
        let early = pending.exchange(0, ordering: .sequentiallyConsistent)
        if early != 0 {
            kill(child, early)
        } else if EarlySignal.received.load(ordering: .relaxed) {
            kill(child, SIGTERM)
        }
        let waiter = Thread {
            var raw: Int32 = 0
            while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Glibc's macros do not bring to Swift.
            let signalled = raw & 0x7f
            let status = signalled == 0 ? (raw >> 8) & 0xff : 128 + signalled
            Application.running.store(-1, ordering: .sequentiallyConsistent)
            logger.info("the application exited; shipping what is committed", metadata: ["exec.status": "\(status)"])
            let waiters = application.exit.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
        waiter.name = "walship-exec-wait"
        waiter.start()
        return application
    }

    /// Splits a command into words: blanks separate them; single quotes keep everything
    /// literally; double quotes keep everything but a backslash before `"`, `\\`, `$` or a
    /// backquote; a backslash outside quotes keeps the next character.
    static func words(_ command: String) throws -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var characters = command.makeIterator()
        while let character = characters.next() {
            switch character {
            case " ", "\t", "\n":
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case "'":
                inWord = true
                var closed = false
                while let next = characters.next() {
                    if next == "'" { closed = true; break }
                    word.append(next)
                }
                guard closed else { throw WalshipError(.usage, "--exec: a single quote is not closed in '\(command)'") }
            case "\"":
                inWord = true
                var closed = false
                while let next = characters.next() {
                    if next == "\"" { closed = true; break }
                    if next == "\\", let escaped = characters.next() {
                        if !["\"", "\\", "$", "`"].contains(escaped) { word.append("\\") }
                        word.append(escaped)
                    } else {
                        word.append(next)
                    }
                }
                guard closed else { throw WalshipError(.usage, "--exec: a double quote is not closed in '\(command)'") }
            case "\\":
                inWord = true
                if let next = characters.next() { word.append(next) }
            default:
                inWord = true
                word.append(character)
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// Waits for the application to exit; its status (128 + the signal's number when a signal
    /// ended it).
    func status() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = exit.withLock { state -> Int32? in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Asks the application to stop (SIGTERM) when it still runs: replication ended first.
    func terminate() {
        if Application.running.load(ordering: .sequentiallyConsistent) == pid { kill(pid, SIGTERM) }
    }
}

extension Application: Service {
    /// Runs until the application exits (then the group shuts down: replication ships what is
    /// committed); a graceful shutdown of the group (replication ended on its own) asks it to stop.
    func run() async {
        await withGracefulShutdownHandler {
            _ = await status()
        } onGracefulShutdown: {
            self.terminate()
        }
    }
}
