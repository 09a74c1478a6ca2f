import Synchronization

/// How often and how patiently to retry a transient failure: exponential backoff with full
/// jitter (a random delay between 0 and `min(maxDelay, baseDelay * 2^attempt)`), at most
/// `maxAttempts` attempts, and a shared `RetryBudget` so that an outage does not turn every
/// request into a retry storm.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var budget: RetryBudget?
    /// The clock the pauses are slept on.
    public var clock: any MonotonicClock
    /// The jitter of each pause.
    public var jitter: JitterSource

    public init(
        maxAttempts: Int = 6, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(10),
        budget: RetryBudget? = RetryBudget(), clock: any MonotonicClock = ContinuousClock(),
        jitter: @escaping JitterSource = systemJitter
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.budget = budget
        self.clock = clock
        self.jitter = jitter
    }

    /// No retries: one attempt.
    public static let none = RetryPolicy(maxAttempts: 1, budget: nil)

    /// The pause before attempt `attempt + 1` (attempt counts from 1), for a jitter value in
    /// 0...1.
    public func delay(afterAttempt attempt: Int, jitter: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * min(max(jitter, 0), 1)
    }

    /// Runs `operation` until it succeeds, fails with an error that is not transient, runs out
    /// of attempts, or the budget is spent. `onRetry` sees each failure that will be retried
    /// (attempt number, error) so the caller can log a warning.
    public func run<T>(
        _ operation: (_ attempt: Int) async throws -> T,
        onRetry: (_ attempt: Int, _ error: WalshipError, _ delay: Duration) -> Void = { _, _, _ in }
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                let value = try await operation(attempt)
                budget?.recordSuccess()
                return value
            } catch let error as WalshipError where error.isTransient && attempt < maxAttempts {
                guard budget?.withdraw() ?? true else { throw error }
                let pause = delay(afterAttempt: attempt, jitter: jitter())
                onRetry(attempt, error, pause)
                try await clock.sleep(for: pause)
                attempt += 1
            }
        }
    }
}

/// A token bucket shared by the requests of one store: each retry takes a token, each success
/// returns a tenth of one. While the bucket is empty, failures are not retried, so a store that
/// is down costs one attempt per request instead of `maxAttempts`.
public final class RetryBudget: Sendable {
    private let tokens: Mutex<Double>
    private let capacity: Double

    public init(capacity: Double = 100) {
        self.capacity = capacity
        tokens = Mutex(capacity)
    }

    /// Takes one token; false when none is left.
    public func withdraw() -> Bool {
        tokens.withLock { value in
            guard value >= 1 else { return false }
            value -= 1
            return true
        }
    }

    public func recordSuccess() {
        tokens.withLock { value in value = min(capacity, value + 0.1) }
    }

    public var available: Double { tokens.withLock { $0 } }
}

extension Duration {
    /// The whole milliseconds in this duration, for logs and metrics.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// This duration in seconds, for metrics and reports.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
