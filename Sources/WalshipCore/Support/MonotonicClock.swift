/// A clock to measure and sleep with whose instants are the continuous clock's, so that code
/// keeps its deadlines as `ContinuousClock.Instant` whichever clock it was given. The agent uses
/// `ContinuousClock`; tests use a manual clock they advance by hand (WalshipTesting's
/// `ManualClock`), so that a backoff is stepped through instead of waited out.
public protocol MonotonicClock: Clock, Sendable where Instant == ContinuousClock.Instant, Duration == Swift.Duration {}

extension ContinuousClock: MonotonicClock {}

/// The source of the random jitter in backoffs, a value in 0...1 per call (injected so that a
/// test knows each pause).
public typealias JitterSource = @Sendable () -> Double

/// Jitter from the system's random number generator.
public let systemJitter: JitterSource = { Double.random(in: 0...1) }
