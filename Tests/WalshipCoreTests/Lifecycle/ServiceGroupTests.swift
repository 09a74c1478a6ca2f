import Logging
import Synchronization
import Testing

@testable import WalshipCore

/// The service group: who is asked to stop, in which order, and what `run` throws. Every wait
/// here is for an event (a service's start or end), never a fixed time.
@Suite("Service group")
struct ServiceGroupTests {
    /// What the services of one test did, in order: "a started", "b asked", "b ended".
    final class Journal: Sendable {
        private let lines = Mutex<[String]>([])
        func note(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
        /// The lines that say who was asked to stop or ended, in order.
        var stops: [String] { all.filter { !$0.hasSuffix("started") } }

        /// Waits until `count` services have started.
        func waitForStarts(_ count: Int) async {
            while all.filter({ $0.hasSuffix("started") }).count < count { await Task.yield() }
        }
    }

    struct Failure: Error, Equatable {}

    /// Runs until its graceful shutdown (noting when it was asked and when it ended), or at once
    /// when `endsOnItsOwn` (throwing `Failure` when `fails`).
    struct Worker: Service {
        let name: String
        let journal: Journal
        var endsOnItsOwn = false
        var fails = false

        func run() async throws {
            journal.note("\(name) started")
            if endsOnItsOwn {
                journal.note("\(name) ended")
                if fails { throw Failure() }
                return
            }
            await withGracefulShutdownHandler {
                await gracefulShutdown()
            } onGracefulShutdown: { [journal, name] in
                journal.note("\(name) asked")
            }
            journal.note("\(name) ended")
        }
    }

    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test("a graceful shutdown asks the services from the last listed to the first, each ended before the next")
    func shutdownInReverseOrder() async throws {
        let journal = Journal()
        let group = ServiceGroup(
            ["a", "b", "c"].map { (name: $0, service: Worker(name: $0, journal: journal) as any Service) },
            logger: Self.logger)
        async let running: Void = group.run()
        await journal.waitForStarts(3)
        group.triggerGracefulShutdown()
        try await running
        #expect(journal.stops == ["c asked", "c ended", "b asked", "b ended", "a asked", "a ended"])
    }

    @Test("a service that ends on its own shuts the rest down, last listed first")
    func serviceEndingStopsTheRest() async throws {
        let journal = Journal()
        let group = ServiceGroup(
            [
                ("a", Worker(name: "a", journal: journal)),
                ("b", Worker(name: "b", journal: journal, endsOnItsOwn: true)),
                ("c", Worker(name: "c", journal: journal)),
            ], logger: Self.logger)
        try await group.run()
        #expect(journal.stops.first == "b ended")
        #expect(Array(journal.stops.dropFirst()) == ["c asked", "c ended", "a asked", "a ended"])
    }

    @Test("a service that throws shuts the rest down gracefully, and run throws its error once all have ended")
    func failureIsRethrownAfterTheShutdown() async {
        let journal = Journal()
        let group = ServiceGroup(
            [
                ("a", Worker(name: "a", journal: journal)),
                ("b", Worker(name: "b", journal: journal, endsOnItsOwn: true, fails: true)),
            ], logger: Self.logger)
        await #expect(throws: Failure.self) { try await group.run() }
        #expect(journal.stops == ["b ended", "a asked", "a ended"])
    }

    @Test("a shutdown triggered before the group runs still lets every service start and stop")
    func shutdownBeforeRun() async throws {
        let journal = Journal()
        let group = ServiceGroup(
            [("a", Worker(name: "a", journal: journal)), ("b", Worker(name: "b", journal: journal))],
            logger: Self.logger)
        group.triggerGracefulShutdown()
        try await group.run()
        #expect(Set(journal.all.filter { $0.hasSuffix("started") }) == ["a started", "b started"])
        #expect(journal.stops == ["b asked", "b ended", "a asked", "a ended"])
    }

    @Test("a handler registered after the shutdown was triggered runs at once; outside a group, never")
    func handlerAfterTheTrigger() async {
        let trigger = ShutdownTrigger()
        trigger.trigger()
        let called = Mutex(0)
        await ShutdownTrigger.$current.withValue(trigger) {
            await withGracefulShutdownHandler {
                #expect(called.withLock { $0 } == 1)
            } onGracefulShutdown: {
                called.withLock { $0 += 1 }
            }
            await gracefulShutdown()  // Returns: triggered already.
        }
        await withGracefulShutdownHandler {
        } onGracefulShutdown: {
            called.withLock { $0 += 1 }
        }
        #expect(called.withLock { $0 } == 1)
    }

    @Test("waiting for a graceful shutdown ends when the task is cancelled")
    func waitEndsOnCancellation() async {
        let waiting = Task { await gracefulShutdown() }
        waiting.cancel()
        await waiting.value
        let inGroup = Task {
            await ShutdownTrigger.$current.withValue(ShutdownTrigger()) { await gracefulShutdown() }
        }
        inGroup.cancel()
        await inGroup.value
    }
}
