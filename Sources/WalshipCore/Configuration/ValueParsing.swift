import Foundation

/// Parsers for the value syntaxes shared by flags and the configuration file: durations
/// (`100ms`, `1s`, `1.5s`, `15m`, `72h`, `30d`, or combinations like `1h30m`) and byte sizes
/// (`512`, `64KiB`, `16MiB`, `1GiB`, `10MB`).
public enum ValueParsing {
    static let durationUnits: [(suffix: String, nanoseconds: Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ("d", 86400e9),
    ]

    /// Parses a duration. Throws `usage` with the accepted forms for anything else.
    public static func duration(_ text: String, name: String = "duration") throws -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var rest = Substring(trimmed)
        var totalNanoseconds = 0.0
        var parts = 0
        while !rest.isEmpty {
            let number = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard !number.isEmpty, let value = Double(number) else { throw durationError(text, name) }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix(while: { $0.isLetter || $0 == "µ" })
            guard let unit = durationUnits.first(where: { $0.suffix == unitText }) else {
                throw durationError(text, name)
            }
            rest = rest.dropFirst(unitText.count)
            totalNanoseconds += value * unit.nanoseconds
            parts += 1
        }
        guard parts > 0 else { throw durationError(text, name) }
        guard totalNanoseconds.isFinite, totalNanoseconds < 9.2e18 else {
            throw WalshipError(.usage, "invalid \(name) '\(text)': out of range (at most about 290 years)")
        }
        return .nanoseconds(Int64(totalNanoseconds.rounded()))
    }

    static func durationError(_ text: String, _ name: String) -> WalshipError {
        WalshipError(.usage, "invalid \(name) '\(text)': use a number with a unit, like 100ms, 1s, 15m, 72h or 30d")
    }

    static let sizeUnits: [(suffix: String, bytes: Double)] = [
        ("", 1), ("B", 1), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12),
        ("K", 1024), ("KiB", 1024), ("M", 1_048_576), ("MiB", 1_048_576), ("G", 1_073_741_824),
        ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
    ]

    /// Parses a byte size.
    public static func byteSize(_ text: String, name: String = "size") throws -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix(while: { $0.isNumber || $0 == "." })
        let unitText = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        guard !number.isEmpty, let value = Double(number),
            let unit = sizeUnits.first(where: { $0.suffix == unitText })
        else {
            throw WalshipError(
                .usage, "invalid \(name) '\(text)': use a number of bytes with a unit, like 512KiB, 16MiB or 1GiB")
        }
        let bytes = value * unit.bytes
        guard bytes.isFinite, bytes < 9e18 else {
            throw WalshipError(.usage, "invalid \(name) '\(text)': too large")
        }
        return Int64(bytes.rounded())
    }

    /// Formats a duration the way the parser reads it back (`1.5s`, `250ms`, `72h`).
    public static func format(_ duration: Duration) -> String {
        let nanoseconds = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        for unit in durationUnits.reversed() where unit.suffix != "µs" {
            let value = nanoseconds / unit.nanoseconds
            if value >= 1 || unit.suffix == "ns" {
                if value == value.rounded() { return "\(Int64(value))\(unit.suffix)" }
                if value >= 1 && unit.suffix != "d" && unit.suffix != "h" && unit.suffix != "m" {
                    return "\((value * 1000).rounded() / 1000)\(unit.suffix)"
                }
            }
        }
        return "\(Int64(nanoseconds))ns"
    }

    /// Formats a byte count for people: `512 B`, `1.5 KiB`, `23.4 MiB`.
    public static func formatBytes(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var index = 0
        while value >= 1024 && index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        return "\(((value * 10).rounded()) / 10) \(units[index])"
    }

    /// Seconds with millisecond precision, for reports: `1.234`.
    public static func seconds(_ duration: Duration) -> String {
        let value = duration.seconds
        let milliseconds = Int64((value * 1000).rounded())
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
