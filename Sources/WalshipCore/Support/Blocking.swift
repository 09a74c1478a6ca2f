import Dispatch

/// Runs blocking work (file I/O, SQLite, compression, fsync) on a Dispatch thread instead of the
/// Swift cooperative thread pool, and awaits its result.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
