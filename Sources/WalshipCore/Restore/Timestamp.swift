import Foundation

/// RFC 3339 times as restore targets and messages use them: `2026-11-25T10:31:07.25Z`,
/// `2026-11-25T11:31:07+01:00`, or a time relative to now, `-15m`.
public enum Timestamp {
    /// Parses a target time into Unix milliseconds. A value starting with '-' is a duration
    /// before `now`.
    public static func parse(_ text: String, now: Date = Date()) throws -> UInt64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("-") {
            let ago = try ValueParsing.duration(String(trimmed.dropFirst()), name: "relative time")
            let ms = now.timeIntervalSince1970 * 1000 - Double(ago.milliseconds)
            return UInt64(max(0, ms))
        }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: trimmed) {
                // ISO8601DateFormatter keeps milliseconds; round to the nearest one.
                return UInt64((date.timeIntervalSince1970 * 1000).rounded())
            }
        }
        throw WalshipError(
            .usage, "invalid time '\(text)': use RFC 3339 like 2026-11-25T10:31:07.25Z or +01:00 offsets, or -15m")
    }

    public static func format(milliseconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
