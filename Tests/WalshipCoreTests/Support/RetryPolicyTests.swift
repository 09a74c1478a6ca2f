import Synchronization
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Retry policy")
struct RetryPolicyTests {
    /// An operation that fails with a transient error for its first `failures` attempts.
    final class Flaky: Sendable {
        let failures: Int
        let attempts = Mutex(0)

        init(failures: Int) { self.failures = failures }

        func call() throws -> Int {
            let attempt = attempts.withLock { count -> Int in
                count += 1
                return count
            }
            guard attempt > failures else {
                throw WalshipError(.storeUnavailable, "injected", isTransient: true)
            }
            return attempt
        }

        var count: Int { attempts.withLock { $0 } }
    }

    @Test(
        "a transient failure is retried after exactly its backoff on the policy's clock (full jitter at 1: 200 ms, then 400 ms)"
    )
    func backoffOnManualClock() async throws {
        let clock = ManualClock()
        let policy = RetryPolicy(maxAttempts: 4, budget: nil, clock: clock, jitter: { 1 })
        let flaky = Flaky(failures: 2)
        let task = Task { try await policy.run { _ in try flaky.call() } }
        #expect(await clock.waitForSleepers(1))
        #expect(flaky.count == 1)
        clock.advance(by: .milliseconds(199))
        #expect(clock.sleepers == 1 && flaky.count == 1, "woke before its 200 ms")
        clock.advance(by: .milliseconds(1))
        #expect(await clock.waitForSleepers(1))
        #expect(flaky.count == 2)
        clock.advance(by: .milliseconds(399))
        #expect(clock.sleepers == 1 && flaky.count == 2, "woke before its 400 ms")
        clock.advance(by: .milliseconds(1))
        #expect(try await task.value == 3)
    }

    @Test("the pause grows to maxDelay and scales with the jitter")
    func delays() {
        let policy = RetryPolicy(baseDelay: .milliseconds(200), maxDelay: .seconds(1))
        #expect(policy.delay(afterAttempt: 1, jitter: 1) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 3, jitter: 1) == .milliseconds(800))
        #expect(policy.delay(afterAttempt: 4, jitter: 1) == .seconds(1))
        #expect(policy.delay(afterAttempt: 40, jitter: 0.5) == .milliseconds(500))
        #expect(policy.delay(afterAttempt: 2, jitter: 0) == .zero)
    }

    @Test("an empty budget ends the retries: the failure is thrown without a pause")
    func budgetEndsRetries() async throws {
        let clock = ManualClock()
        let budget = RetryBudget(capacity: 1)
        let policy = RetryPolicy(maxAttempts: 6, budget: budget, clock: clock, jitter: { 1 })
        let flaky = Flaky(failures: 10)
        let task = Task { try await policy.run { _ in try flaky.call() } }
        #expect(await clock.waitForSleepers(1))
        clock.advance(by: .milliseconds(200))
        await #expect(throws: WalshipError.self) { try await task.value }
        #expect(flaky.count == 2, "one retry, paid with the only token")
        #expect(clock.sleepers == 0)
    }

    @Test("an error that is not transient is thrown at once")
    func permanentErrorNotRetried() async throws {
        let policy = RetryPolicy(maxAttempts: 6, budget: nil, clock: ManualClock(), jitter: { 1 })
        let attempts = Mutex(0)
        await #expect(throws: WalshipError.self) {
            try await policy.run { _ -> Int in
                attempts.withLock { $0 += 1 }
                throw WalshipError(.accessDenied, "no")
            }
        }
        #expect(attempts.withLock { $0 } == 1)
    }
}
