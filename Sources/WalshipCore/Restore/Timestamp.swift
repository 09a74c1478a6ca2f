import Foundation

/// RFC 3339 times as restore targets and messages use them: `2026-11-25T10:31:07.25Z`,
/// `2026-11-25T11:31:07+01:00`, or a time relative to now, `-15m`.
public enum Timestamp {
    /// Parses a target time into Unix milliseconds. A value starting with '-' is a duration
    /// before `now`. A time before 1970 (written out, or relative) is 0: before any restore
    /// window, so the target is outside it (exit 6) whichever way it was written.
    public static func parse(_ text: String, now: Date = Date()) throws -> UInt64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("-") {
            let ago = try ValueParsing.duration(String(trimmed.dropFirst()), name: "relative time")
            let ms = now.timeIntervalSince1970 * 1000 - Double(ago.milliseconds)
            return UInt64(max(0, ms))
        }
        if let milliseconds = CivilTime.parseRFC3339(trimmed) {
            return UInt64(max(0, milliseconds))
        }
        throw WalshipError(
            .usage, "invalid time '\(text)': use RFC 3339 like 2026-11-25T10:31:07.25Z or +01:00 offsets, or -15m")
    }

    public static func format(milliseconds: UInt64) -> String {
        CivilTime(unixMilliseconds: Int64(clamping: milliseconds)).rfc3339
    }
}
