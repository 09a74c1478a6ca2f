import Foundation
import WalshipCore
import WalshipTesting

#if canImport(Glibc)
    import Glibc
#endif

/// One run of the torture test: the application workload, the agent, and the events and chaos
/// scheduled by operation count from the seed.
final class TortureRun {
    let directory: TemporaryDirectory
    let workload: Workload
    let agent: AgentController
    /// Operations per period of scheduled events.
    let period: Int
    /// The agent's wall clock, when it can be stepped (file replicas only: a large step breaks
    /// SigV4).
    let clock: WallClockShift?
    private var random: SeededGenerator
    private(set) var events: [String: Int] = [:]
    /// What went wrong on the application's side or the agent's, outside the checker.
    private(set) var problems: [String] = []
    private(set) var maxCommitMs: UInt64 = 0
    /// Whether two agents ever ran at once (the checker then accepts forked generations).
    private(set) var forkEvent = false
    /// Commits the checker may find lost without a downtime (see `Checker.excused`).
    private(set) var excused: Set<Int> = []
    /// Times (Unix ms) the agent ran but could not replicate (its spool's file system full), as
    /// stops and starts for the checker.
    private(set) var pauses: (stops: [(ms: UInt64, how: AgentController.Stop)], starts: [UInt64]) = ([], [])
    /// The state directory's own small file system, when the run could mount one (as root).
    let spoolDisk: SmallFileSystem?
    /// The replica, and the environment that reaches its store directly (not through the proxy).
    let replicaURL: String
    let checkEnvironment: [String: String]
    private var restartAt = 0
    private var secondAgent: AgentController?
    private var clockStepped = false
    private var spoolFilledInPeriod: Int?
    /// The period in which the wal-index header was last damaged, and the agent last stopped
    /// during a verify (each waits, within its stretch of the period, for a settled agent).
    private var headerBrokenInPeriod: Int?
    private var verifyStoppedInPeriod: Int?
    private var startCheckCommitInPeriod: Int?
    private var hangingStopInPeriod: Int?
    private var snapshotAskedInPeriod: Int?
    /// The fault proxy between the agent and its S3 store (nil for file replicas).
    let proxy: FaultProxy?

    init(
        directory: TemporaryDirectory, workload: Workload, agent: AgentController, period: Int,
        clock: WallClockShift?, spoolDisk: SmallFileSystem?, replicaURL: String, checkEnvironment: [String: String],
        proxy: FaultProxy? = nil, seed: UInt64
    ) {
        self.proxy = proxy
        self.replicaURL = replicaURL
        self.checkEnvironment = checkEnvironment
        self.directory = directory
        self.workload = workload
        self.agent = agent
        self.period = period
        self.clock = clock
        self.spoolDisk = spoolDisk
        random = SeededGenerator(seed: seed)
    }

    private var savedCopy: String { directory.file("saved-copy.db") }
    private var cronCopy: String { directory.file("cron-copy.db") }

    /// One operation: the agent restarted when due, the scheduled event at this point of the
    /// period, and one seeded step of chaos or workload.
    func step(_ op: Int) async throws {
        agent.checkAlive()
        workload.releaseRead()
        if !agent.isRunning && op >= restartAt {
            try agent.start()
            count("agent starts")
        }
        try await scheduledEvent(op)
        do {
            try chaos(op)
        } catch {
            problems.append("op \(op): the application failed: \(error)")
        }
        usleep(UInt32.random(in: 0...2000, using: &random))
    }

    /// The events at fixed points of each period: a start on a full state disk; a copy of the
    /// database saved, then put back over it in place; a first snapshot damaged in the store for
    /// a while; a wal-index header left inconsistent (sometimes under another process's write
    /// lock); the agent stopped during a verify; `walship snapshot` asked of the running agent
    /// (at random with the agent killed, stopped or restarted under it); a second agent
    /// continuing a copy of the first
    /// one's state for a while (a rolling
    /// deploy); (file replicas) the agent's wall clock stepped one hour back; cron mode; and the
    /// spool's file system filled while the agent runs.
    private func scheduledEvent(_ op: Int) async throws {
        switch op % period {
        case let point
        where point >= period / 20 && point < period / 5 && hangingStopInPeriod != op / period && proxy != nil
            && agent.isRunning && agent.hasSettled && secondAgent == nil:
            hangingStopInPeriod = op / period
            try stopWhileStoreHangs()
            restartAt = op + 1
        case period / 5 where spoolDisk != nil && secondAgent == nil:
            try startOnFullDisk()
            restartAt = op + 1
        case period / 4:
            try workload.saveCopy(to: savedCopy)
        case let point
        where point >= period * 9 / 20 && point < period * 3 / 5 && agent.isRunning && agent.hasSettled
            && workload.fit(of: savedCopy) != nil:
            let found = try PutBack.run(
                copy: savedCopy, workload: workload, agent: agent, directory: directory, events: &events,
                excused: &excused, using: &random)
            try? FileManager.default.removeItem(atPath: savedCopy)
            problems += found.map { "op \(op): \($0)" }
        case let point
        where point >= period / 2 && point < period * 11 / 20 && snapshotAskedInPeriod != op / period
            && agent.isRunning && agent.hasSettled && secondAgent == nil:
            snapshotAskedInPeriod = op / period
            let interruption = SnapshotRequest.Interruption.allCases.randomElement(using: &random)!
            let (event, found) = try SnapshotRequest.run(
                agent: agent, database: workload.path, directory: directory, replicaURL: replicaURL,
                checkEnvironment: checkEnvironment, interruption: interruption, using: &random)
            if interruption == .kill { count("agent kill -9") }
            if interruption == .kill || interruption == .stop { restartAt = op + 1 }
            if !event.isEmpty { count(event) }
            problems += found.map { "op \(op): \($0)" }
        case let point
        where point >= period * 7 / 20 && point < period * 2 / 5 && headerBrokenInPeriod != op / period
            && agent.isRunning && agent.hasSettled:
            headerBrokenInPeriod = op / period
            try breakWALIndexHeader(holdingWriteLock: Bool.random(using: &random))
        case let point
        where point >= period * 2 / 5 && point < period * 9 / 20 && verifyStoppedInPeriod != op / period
            && agent.isRunning && agent.hasSettled && secondAgent == nil:
            verifyStoppedInPeriod = op / period
            try stopDuringVerify()
        case period * 3 / 10:
            let (event, found) = try await SnapshotDamage.run(
                replicaURL: replicaURL, environment: checkEnvironment, directory: directory, using: &random)
            count(event ?? "first snapshot damage: skipped (no snapshot the latest point does not need)")
            problems += found.map { "op \(op): \($0)" }
        case period * 3 / 5 where agent.isRunning && secondAgent == nil:
            try startSecondAgent()
        case period * 7 / 10 where secondAgent != nil:
            endFork()
            restartAt = op + 1
        case period * 3 / 4:
            try workload.saveCopy(to: cronCopy)
        case let point
        where point > period * 3 / 4 && point < period * 4 / 5 && startCheckCommitInPeriod != op / period
            && agent.isRunning && agent.hasSettled && secondAgent == nil:
            startCheckCommitInPeriod = op / period
            try commitDuringStartCheck()
        case period * 4 / 5 where clock != nil && !clockStepped:
            try clock?.set(milliseconds: -3_600_000)
            clockStepped = true
            count("agent wall clock stepped back 1 h")
        case period * 17 / 20 where secondAgent == nil:
            try cron()
            restartAt = op + 1
        case let point
        where point >= period * 9 / 10 && spoolFilledInPeriod != op / period && spoolDisk != nil && agent.isRunning
            && agent.hasSettled && secondAgent == nil:
            spoolFilledInPeriod = op / period
            try fillSpoolDisk()
        default:
            break
        }
    }

    /// A second agent with a copy of the first one's state directory: on this host it waits for
    /// the replica lock while the first one runs (a rolling deploy); or, as a cloned machine would
    /// (the lock turned off), it runs beside the first one and forks the generation.
    private func startSecondAgent() throws {
        _ = try CommandRunner.run("/bin/cp", ["-a", directory.file("state"), directory.file("state-b")])
        var arguments = agent.arguments
        arguments[arguments.firstIndex(of: directory.file("state"))!] = directory.file("state-b")
        let cloned = Bool.random(using: &random)
        let second = AgentController(
            arguments: arguments,
            environment: agent.environment.merging(cloned ? ["WALSHIP_TEST_WITHOUT_REPLICA_LOCK": "1"] : [:]) { $1 },
            logPath: directory.file("agent-b.log"))
        try second.start()
        secondAgent = second
        if cloned {
            forkEvent = true
            count("second agent on a copied state, as a cloned machine")
        } else {
            count("second agent on a copied state (rolling deploy)")
        }
    }

    /// The second agent stops, and the first one is killed (its next start finds the fork).
    private func endFork() {
        secondAgent?.stop(.term)
        secondAgent = nil
        try? FileManager.default.removeItem(atPath: directory.file("state-b"))
        if agent.isRunning {
            agent.stop(.kill)
            count("agent kill -9")
        }
    }

    /// Cron mode for a while: the agent stops, and `replicate --once` runs between short stretches
    /// of the workload. The application restarts (its last connection removes the WAL) and
    /// checkpoints between runs, so most runs must prove where they stand from the database's
    /// content; before one run, a copy is put back keeping the application's WAL.
    private func cron() throws {
        if let status = agent.stop(.term), status != 0 && status != 4 {
            problems.append("agent stop before the --once runs exited \(status)")
        }
        let runs = Int.random(in: 3...6, using: &random)
        let putBackBefore = workload.fit(of: cronCopy) == .fits ? Int.random(in: 1..<runs, using: &random) : nil
        for run in 0..<runs {
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                switch Int.random(in: 0..<10, using: &random) {
                case 0: try workload.restart()
                case 1: try workload.checkpoint(using: &random)
                default: try workload.commit(using: &random)
                }
            }
            if run == putBackBefore, try workload.prepareWALAlivePutBack(copy: cronCopy) != nil {
                try once()  // Ships the commit before the copy goes back.
                try workload.putBackKeepingWAL(copy: cronCopy, in: directory)
                for _ in 0..<Int.random(in: 0...3, using: &random) { try workload.commit(using: &random) }
                let log = try once()
                if log.contains("changed behind SQLite") {
                    count("cron: copy put back keeping the WAL, noticed as drift")
                } else if log.contains("new generation") || log.contains("read from the database file") {
                    count("cron: copy put back keeping the WAL, decided at the run's start")
                } else {
                    problems.append("the --once run after a copy was put back did not notice it")
                }
            } else {
                try once()
            }
        }
        try? FileManager.default.removeItem(atPath: cronCopy)
        count("cron: agent stopped for --once runs")
    }

    /// One `replicate --once` run; returns its log.
    @discardableResult
    private func once() throws -> String {
        let (status, log) = try agent.runOnce()
        count("cron: --once runs")
        if status != 0 { problems.append("replicate --once exited \(status): \(log.suffix(400))") }
        return log
    }

    /// The state directory's file system fills up while the application keeps committing, then
    /// space returns: the agent must say so, keep running, let go of the WAL, and start a new
    /// generation once space returns.
    private func fillSpoolDisk() throws {
        guard let spoolDisk else { return }
        let filler = spoolDisk.path + "/filler"
        // The agent may say so while dd still fills the file system.
        let logBefore = agent.currentLog.utf8.count
        pauses.stops.append((Workload.nowMs(), .kill))
        _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k", "status=none"])
        func logSince() -> Substring {
            Substring(String(decoding: agent.currentLog.utf8.dropFirst(logBefore), as: UTF8.self))
        }
        var full = false
        for _ in 0..<200 where !full {
            try workload.commit(using: &random)
            usleep(50_000)
            full = logSince().contains("no space left for the spool")
        }
        try FileManager.default.removeItem(atPath: filler)
        pauses.starts.append(Workload.nowMs())
        guard full else {
            problems.append("the agent did not say its spool's file system was full")
            return
        }
        let resumed = (0..<600).contains { _ in
            if logSince().contains("snapshot taken", after: "space returned") { return true }
            usleep(100_000)
            return false
        }
        if !resumed { problems.append("the agent did not start a new generation within 60 s of space returning") }
        count("spool file system full, then space returned")
    }

    /// A writer killed between the two copies of the wal-index header leaves them different; while
    /// the application is idle nothing of SQLite's reads it, so the agent must mend it (a read of
    /// its own) instead of racing on and holding its read mark. With `holdingWriteLock`, another
    /// process holds the write lock over the damaged header for 3 to 12 s (the agent's mend fails
    /// meanwhile and must be tried again, without a needless new generation: polls may race for
    /// 20 s before the read chain counts as broken). At random, an application process is killed
    /// inside COMMIT first: the recovery that mends the header publishes its commit if it did not
    /// land (its frames are still in the WAL), and the agent ships it like any other.
    private func breakWALIndexHeader(holdingWriteLock: Bool) throws {
        let shm = workload.path + "-shm"
        var inDoubt = false
        if Bool.random(using: &random) {
            let k = workload.pendingK
            let start = Workload.nowMs()
            if try Victim.killInCommit(database: workload.path, k: k, directory: directory) {
                inDoubt = try !workload.settleInDoubt(k: k, startMs: start)
            }
        }
        // The application has been idle for a moment (the agent has read its last commit, as a
        // rule); a commit it had not read yet is read once the header is mended, late by the
        // event, like a commit read after a restart.
        usleep(1_000_000)
        pauses.starts.append(Workload.nowMs())
        let logBefore = agent.currentLog.utf8.count
        let writer = holdingWriteLock ? try Workload.open(workload.path) : nil
        try writer?.execute("BEGIN IMMEDIATE")
        // Another process touches the -shm: closing a descriptor of it here would drop every POSIX
        // lock this process's connections hold on it (their DMS lock too), and the next process to
        // open the database would truncate the -shm under their mapping (SIGBUS).
        let python = CommandRunner.which("python3") ?? "/usr/bin/python3"
        let flip = try CommandRunner.run(
            python,
            [
                "-c",
                "import sys\nf = open(sys.argv[1], 'r+b')\nf.seek(68)\nb = f.read(1)\nf.seek(68)\nf.write(bytes([b[0] ^ 0xFF]))",
                shm,
            ])
        guard flip.status == 0 else {
            try writer?.execute("ROLLBACK")
            writer?.close()
            return
        }
        if let writer {
            usleep(UInt32.random(in: 3_000_000...12_000_000, using: &random))
            try writer.execute("ROLLBACK")
            writer.close()
            count("wal-index header left inconsistent under another process's write lock")
        }
        defer {
            let since = String(decoding: agent.currentLog.utf8.dropFirst(logBefore), as: UTF8.self)
            if since.contains("every poll of the WAL raced") {
                problems.append("the agent started a new generation over a wal-index header it could have mended")
            }
        }
        let mended = (0..<100).contains { _ in
            usleep(100_000)
            let check = try? CommandRunner.run(
                python,
                [
                    "-c",
                    "import sys\nd = open(sys.argv[1], 'rb').read(96)\nsys.exit(0 if len(d) == 96 and d[:48] == d[48:] else 1)",
                    shm,
                ])
            return check?.status == 0
        }
        if !mended { problems.append("the agent did not mend a wal-index header left inconsistent within 10 s") }
        count("wal-index header left inconsistent while the application is idle")
        if inDoubt {
            let before = workload.oracle.count
            try workload.settleLateLanding()
            count(
                workload.oracle.count > before
                    ? "wal-index header damaged after a kill in COMMIT: the recovery published the commit"
                    : "wal-index header damaged after a kill in COMMIT: the commit stayed unpublished")
        }
    }

    /// A commit while the agent's start reads the database (found by review): the agent stops,
    /// the application truncates the WAL, commits and copies the whole new WAL into the file
    /// (PASSIVE, its connections kept, so the WAL stays), and the agent starts with its content
    /// check paused after its read (`WALSHIP_TEST_PAUSE_AFTER_CONTENT_CHECK`). A commit in that pause restarts the WAL (the
    /// agent's read transaction sits on slot 0, which does not stop a restart): the agent must go
    /// on from the restarted WAL in the same generation, not start a new one.
    private func commitDuringStartCheck() throws {
        if let status = agent.stop(.term), status != 0 && status != 4 {
            problems.append("agent stop before a start's content check exited \(status)")
        }
        // A new WAL, so that the WAL cannot prove where the agent stands: the content check runs.
        try workload.truncateWAL()
        for _ in 0..<3 { try workload.commit(using: &random) }
        let backfilled = try workload.backfillWAL()
        try agent.start(extraEnvironment: ["WALSHIP_TEST_PAUSE_AFTER_CONTENT_CHECK": "1500ms"])
        count("agent starts")
        guard backfilled, agent.waitForLog("test hook: pausing after the content check's read", timeout: 30) else {
            count("commit during a start's content check: skipped (no content check, or the WAL not all copied)")
            return
        }
        try workload.commit(using: &random)
        // Read once the pause ends: late by the event, like a commit read after a restart.
        pauses.starts.append(Workload.nowMs())
        guard agent.waitUntilSettled(seconds: 60) else {
            problems.append("the agent did not settle after a commit during its start's content check")
            return
        }
        let log = agent.currentLog
        let after = log.range(of: "test hook: pausing").map { log[$0.upperBound...] } ?? Substring(log)
        if after.contains("new generation") {
            problems.append("the agent started a new generation over a WAL restarted during its start's content check")
        }
        count("commit during a start's content check (the WAL restarted under it)")
    }

    /// The agent stopped (SIGTERM) while its S3 store hangs (the proxy stopped with SIGSTOP:
    /// connections accepted, never answered) and the application has commits it has not
    /// uploaded: the stop must end within 2 x shutdown-timeout + 5 s (25 s here) with exit 4
    /// (or 0 if everything went up before the store hung), keeping the rest in its spool, which
    /// the next start ships (the checker's restores see every commit).
    private func stopWhileStoreHangs() throws {
        guard let proxy else { return }
        proxy.freeze()
        defer { proxy.thaw() }
        for _ in 0..<5 { try workload.commit(using: &random) }
        // At random a second signal, which must end the stop at once (exit 130).
        if Bool.random(using: &random) {
            if let (status, seconds) = agent.stopTwice() {
                if ![0, 4, 130].contains(status) { problems.append("the agent signalled twice exited \(status)") }
                if seconds > 5 { problems.append("the agent took \(Int(seconds)) s to exit after a second SIGTERM") }
            }
            count("agent stopped twice while the store hung")
            return
        }
        let started = Date()
        let status = agent.stop(.term)
        let took = Date().timeIntervalSince(started)
        if let status, status != 0 && status != 4 {
            problems.append("the agent stopped while the store hung exited \(status)")
        }
        // The bound is 25 s; a request to a hanging store alone lasts minutes.
        if took > 45 { problems.append("the agent took \(Int(took)) s to stop while the store hung") }
        count("agent stopped while the store hung")
    }

    /// The agent stopped (SIGTERM) while its scheduled verify has a trial restore under
    /// `<state-dir>/verify` (a database-sized file), then started again: what the abandoned verify
    /// left must be gone once the start has settled. When no verify is caught within 20 s (the
    /// application commits meanwhile, so that the agent has something to verify), or the verify
    /// ended before the stop, a leftover is planted so the start's cleanup is still checked.
    private func stopDuringVerify() throws {
        let state = directory.file("state")
        guard
            let replicator = try FileManager.default.contentsOfDirectory(atPath: state).sorted().first(where: {
                FileManager.default.fileExists(atPath: "\(state)/\($0)/state.json")
            })
        else { return }
        let verify = "\(state)/\(replicator)/verify"
        func leftovers() -> [String: UInt64] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: verify)) ?? []
            return names.reduce(into: [:]) { found, name in
                let inode = (try? FileManager.default.attributesOfItem(atPath: "\(verify)/\(name)"))?[.systemFileNumber]
                found[name] = (inode as? NSNumber)?.uint64Value ?? 0
            }
        }
        var caught = false
        var lastCommit: UInt64 = 0
        let deadline = Workload.nowMs() + 20_000
        while !caught && Workload.nowMs() < deadline {
            if Workload.nowMs() >= lastCommit + 100 {
                try workload.commit(using: &random)
                lastCommit = Workload.nowMs()
            }
            caught = !leftovers().isEmpty
            if !caught { usleep(1000) }
        }
        if let status = agent.stop(.term), status != 0 && status != 4 { problems.append("agent stop exited \(status)") }
        var left = leftovers()
        if left.isEmpty {
            try FileManager.default.createDirectory(atPath: verify, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(
                atPath: verify + "/torture-leftover.db", contents: Data(count: 1 << 20))
            left = leftovers()
            count(caught ? "agent stopped during a verify (it had ended), leftover planted" : "verify leftover planted")
        } else {
            count("agent stopped during a verify, leftovers kept")
        }
        try agent.start()
        if !agent.waitUntilSettled() { problems.append("the agent did not finish starting within 60 s") }
        let stale = leftovers().filter { left[$0.key] == $0.value }
        if !stale.isEmpty {
            problems.append(
                "files an abandoned verify left in <state-dir>/verify are still there after a start: \(stale.keys.sorted())"
            )
        }
    }

    /// The agent stopped, its state directory's file system filled, and the agent started (or
    /// one `--once` run, which must exit 13 and say why): it must wait for space without ending,
    /// and once space returns go on (its generation, or a new one with a snapshot).
    private func startOnFullDisk() throws {
        guard let spoolDisk else { return }
        if let status = agent.stop(.term), status != 0 && status != 4 {
            problems.append("agent stop before filling the state disk exited \(status)")
        }
        for _ in 0..<Int.random(in: 1...5, using: &random) { try workload.commit(using: &random) }
        let filler = spoolDisk.path + "/filler"
        _ = try CommandRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k", "status=none"])
        defer { try? FileManager.default.removeItem(atPath: filler) }
        if Bool.random(using: &random) {
            let (status, log) = try agent.runOnce()
            count("cron: --once on a full state disk")
            if status != 13 && status != 0 {
                problems.append("replicate --once on a full state disk exited \(status): \(log.suffix(400))")
            } else if status == 13 && !log.contains("No space left") && !log.contains("disk is full") {
                problems.append(
                    "replicate --once on a full state disk exited 13 without saying why: \(log.suffix(400))")
            }
        }
        pauses.stops.append((Workload.nowMs(), .kill))
        try agent.start()
        var waited = false
        for _ in 0..<100 where !waited {
            try workload.commit(using: &random)
            usleep(100_000)
            agent.checkAlive()
            waited = agent.currentLog.contains("no space left") || !agent.isRunning
        }
        try FileManager.default.removeItem(atPath: filler)
        pauses.starts.append(Workload.nowMs())
        guard agent.isRunning else { return }  // checkAlive counted the exit as a problem.
        // Settled after the last time it said the disk was full (or it never needed the space).
        let settled = (0..<600).contains { _ in
            let log = agent.currentLog
            let after =
                log.range(of: "no space left", options: .backwards).map { log[$0.upperBound...] } ?? Substring(log)
            if after.contains("continuing generation") || after.contains("snapshot taken") { return true }
            usleep(100_000)
            return false
        }
        if !settled {
            problems.append("the agent started on a full state disk did not go on within 60 s of space returning")
        }
        count(
            waited
                ? "agent started on a full state disk, waited for space"
                : "agent started on a full state disk, needed no space")
    }

    /// One seeded step: a kill or stop of the agent, an application process killed in COMMIT,
    /// or a piece of the workload.
    private func chaos(_ op: Int) throws {
        switch Int.random(in: 0..<1000, using: &random) {
        case 0..<8 where agent.isRunning:
            agent.stop(.kill)
            count("agent kill -9")
            restartAt = op + Int.random(in: 0...300, using: &random)
        case 8..<12 where agent.isRunning:
            let status = agent.stop(.term)
            count("agent SIGTERM")
            if status != 0 && status != 4 { problems.append("agent stop exited \(status ?? -1)") }
            restartAt = op + Int.random(in: 0...100, using: &random)
        case 12..<17:
            let k = workload.pendingK
            let start = Workload.nowMs()
            if try !Victim.killInCommit(database: workload.path, k: k, directory: directory) {
                problems.append("op \(op): the victim never reached COMMIT")
            }
            let landed = try workload.settleInDoubt(k: k, startMs: start)
            count(landed ? "app killed in COMMIT (landed)" : "app killed in COMMIT")
        case 17..<67:
            try workload.rollback(using: &random)
        case 67..<82:
            try workload.vacuum(using: &random)
        case 82..<102:
            try workload.setAutocheckpoint(using: &random)
        case 102..<162:
            try workload.checkpoint(using: &random)
        case 162..<172:
            try workload.restart()
        case 172..<176:
            try workload.holdRead(milliseconds: UInt64.random(in: 1000...6000, using: &random))
        case 176..<272:
            usleep(UInt32.random(in: 20_000...300_000, using: &random))
            count("pauses")
        default:
            let before = Workload.nowMs()
            try workload.commit(using: &random)
            maxCommitMs = max(maxCommitMs, Workload.nowMs() - before)
        }
    }

    /// The end of the run: a fork still going is ended (the first agent's restart finds it), the
    /// agent ships the last commits with the faults off (`faultsOff`) and stops gracefully.
    func finish(faultsOff: () -> Void) throws {
        workload.releaseRead(force: true)
        if secondAgent != nil { endFork() }
        if !agent.isRunning {
            try agent.start()
            count("agent starts")
        }
        for _ in 0..<20 {
            try workload.commit(using: &random)
            usleep(20_000)
        }
        usleep(1_000_000)
        faultsOff()
        let finalStop = agent.stop(.term)
        if finalStop != 0 {
            problems.append("the final SIGTERM stop exited \(finalStop ?? -1)")
            let once = try WalshipBinary.run(agent.arguments + ["--once"], environment: agent.environment)
            if once.status != 0 {
                problems.append("the final --once exited \(once.status): \(once.stderr.suffix(400))")
            }
        }
        problems += agent.unexpectedExits
        // The first agent never meets a second one under an object's key (the second one's
        // generations are its own): an object that met another means one agent built two
        // different objects for the same transactions (issue 13).
        problems += agent.logProblems(["object key already holds another object", "a spooled object is unreadable"])
        // The agent's own verifies (verify-interval) run under the chaos; those during a damage
        // event rightly fail, so they are counted here and the checker's `walship verify` judges.
        events["agent verifies passed"] = agent.logCount("verified the replica")
        events["agent verifies that found problems"] = agent.logCount("verify found problems")
    }

    private func count(_ event: String) { events[event, default: 0] += 1 }
}
