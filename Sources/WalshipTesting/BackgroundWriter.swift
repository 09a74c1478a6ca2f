import Foundation
import Synchronization
import WalshipCore

/// Commits `LedgerDatabase` transactions from its own thread and connection until stopped, like an
/// application writing while walship works. Counts its commits.
public final class BackgroundWriter: Sendable {
    private let path: String
    private let interval: Duration
    private let payloadBytes: Int
    private let stopFlag = Atomic<Bool>(false)
    private let commitCount = Atomic<Int>(0)
    private let failure = Mutex<String?>(nil)
    private let done = DispatchSemaphore(value: 0)

    /// Starts writing to `path` (which must already hold the ledger schema) every `interval`.
    public init(path: String, interval: Duration = .milliseconds(2), payloadBytes: Int = 200) {
        self.path = path
        self.interval = interval
        self.payloadBytes = payloadBytes
        let thread = Thread { [self] in self.loop() }
        thread.start()
    }

    /// Commits so far.
    public var commits: Int { commitCount.load(ordering: .relaxed) }

    /// Stops the writer and waits for its thread; throws the error that stopped it early, if any.
    @discardableResult
    public func stop() throws -> Int {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
        if let message = failure.withLock({ $0 }) {
            throw WalshipError(.internal, "background writer failed: \(message)")
        }
        return commits
    }

    private func loop() {
        defer { done.signal() }
        do {
            let connection = try Connection(path: path)
            defer { connection.close() }
            try connection.setBusyTimeout(milliseconds: 5000)
            while !stopFlag.load(ordering: .relaxed) {
                try LedgerDatabase.commitNext(on: connection, payloadBytes: payloadBytes)
                commitCount.add(1, ordering: .relaxed)
                if interval > .zero { Thread.sleep(forTimeInterval: Self.seconds(interval)) }
            }
        } catch {
            failure.withLock { $0 = "\(error)" }
        }
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
