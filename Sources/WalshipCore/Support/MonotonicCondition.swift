#if canImport(Glibc)
    import Glibc
#endif

/// A lock with a condition whose timed waits run on the monotonic clock.
///
/// `NSCondition.wait(until:)` waits for a wall-clock `Date`: a step of the wall clock back by an
/// hour during a 100 ms wait makes it last an hour (an agent stalled like that stops shipping
/// and, holding its read transaction, blocks the application's checkpoints). Here the deadline
/// is on `CLOCK_MONOTONIC`, which no clock step moves.
final class MonotonicCondition: @unchecked Sendable {  // The pthread objects are the synchronisation.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held: waits until `predicate` is false or `duration` has passed on the
    /// monotonic clock, whichever comes first.
    func wait(for duration: Duration, while predicate: () -> Bool) {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        while predicate() {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { return }
        }
    }
}
