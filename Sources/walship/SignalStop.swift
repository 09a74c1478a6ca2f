import ArgumentParser
import Foundation
import Logging
import WalshipCore

/// SIGINT/SIGTERM for long-running commands: the first asks for a graceful stop, the second
/// exits at once.
enum SignalStop {
    nonisolated(unsafe) static var shared: StopSignal?  // Written once before handlers are installed.

    static func install() -> StopSignal {
        let stop = StopSignal()
        shared = stop
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in
                guard let stop = SignalStop.shared else { _exit(130) }
                if stop.isStopped { _exit(130) }
                stop.stop()
            }
        }
        if EarlySignal.received.load(ordering: .relaxed) { stop.stop() }
        return stop
    }
}
