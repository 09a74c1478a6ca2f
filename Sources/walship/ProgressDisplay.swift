import Foundation
import WalshipCore

/// Shows the progress of a long operation on standard error: a bar redrawn in place on a
/// terminal, plain lines (every 10% and at most every 5 seconds) otherwise, nothing when quiet.
final class ProgressDisplay {
    enum Style {
        case bar
        case lines
        case quiet
    }

    let label: String
    let style: Style
    private let started = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(3600)
    private var lastDecile = -1
    private var finished = false

    init(label: String, quiet: Bool) {
        self.label = label
        if quiet {
            style = .quiet
        } else {
            style = isatty(STDERR_FILENO) == 1 ? .bar : .lines
        }
    }

    /// Reports `fraction` done (0...1) with a short detail like "1200/5000 pages".
    func update(fraction: Double, detail: String) {
        guard style != .quiet, !finished else { return }
        let now = ContinuousClock.now
        let percent = Int((fraction * 100).rounded(.down))
        switch style {
        case .bar:
            guard now - lastDraw >= .milliseconds(100) || fraction >= 1 else { return }
            lastDraw = now
            let width = 30
            let filled = Int(Double(width) * min(max(fraction, 0), 1))
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            printRaw("\r\u{1B}[2K\(label) [\(bar)] \(percent)% \(detail)\(eta(fraction, now))")
        case .lines:
            let decile = percent / 10
            guard decile != lastDecile || now - lastDraw >= .seconds(5) else { return }
            lastDecile = decile
            lastDraw = now
            printRaw("\(label): \(percent)% \(detail)\n")
        case .quiet:
            break
        }
    }

    /// Ends the display (a newline after a bar).
    func finish() {
        guard !finished else { return }
        finished = true
        if style == .bar { printRaw("\n") }
    }

    private func eta(_ fraction: Double, _ now: ContinuousClock.Instant) -> String {
        guard fraction > 0.02, fraction < 1 else { return "" }
        let elapsed = now - started
        let seconds = Double(elapsed.components.seconds) * (1 - fraction) / fraction
        return " ETA \(Int(seconds.rounded()))s"
    }

    private func printRaw(_ text: String) {
        writeStandardError(text)
    }
}
