/// UTC calendar arithmetic and the few timestamp formats walship reads and writes (RFC 3339,
/// SigV4's compact form, HTTP dates), computed without Foundation's formatters: those load ICU's
/// calendar and time-zone data (about 8 MB of resident memory for a process that logs one
/// line) and cost tens of microseconds per call.
public struct CivilTime: Sendable, Equatable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    /// Milliseconds within the second, 0...999.
    public var millisecond: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.millisecond = millisecond
    }

    /// The UTC calendar fields of `milliseconds` since the Unix epoch (Howard Hinnant's
    /// days-to-civil algorithm; negative values are before 1970).
    public init(unixMilliseconds milliseconds: Int64) {
        let seconds = Self.floorDivide(milliseconds, 1000)
        let days = Self.floorDivide(seconds, 86400)
        let secondOfDay = Int(seconds - days * 86400)
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        hour = secondOfDay / 3600
        minute = secondOfDay % 3600 / 60
        second = secondOfDay % 60
        let remainder = milliseconds % 1000
        millisecond = Int(remainder < 0 ? remainder + 1000 : remainder)
    }

    /// Milliseconds since the Unix epoch of these UTC fields (days-from-civil).
    public var unixMilliseconds: Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = Int64(era) * 146_097 + Int64(dayOfEra) - 719_468
        let seconds = days * 86400 + Int64(hour * 3600 + minute * 60 + second)
        return seconds * 1000 + Int64(millisecond)
    }

    /// Whether the fields name a real time in years 1 to 9999 (leap seconds are not accepted).
    public var isValid: Bool {
        (1...9999).contains(year) && (1...12).contains(month)
            && (1...Self.daysIn(month: month, year: year)).contains(day)
            && (0...23).contains(hour) && (0...59).contains(minute) && (0...59).contains(second)
            && (0...999).contains(millisecond)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value / divisor - (value % divisor < 0 ? 1 : 0)
    }

    // MARK: Formats

    /// `2026-11-25T10:31:07.250Z`: RFC 3339 in UTC with milliseconds.
    public var rfc3339: String {
        "\(Self.pad(year, 4))-\(Self.pad(month, 2))-\(Self.pad(day, 2))T\(Self.pad(hour, 2)):\(Self.pad(minute, 2))"
            + ":\(Self.pad(second, 2)).\(Self.pad(millisecond, 3))Z"
    }

    /// `20261125T103107Z`, SigV4's `x-amz-date`.
    public var compactTimestamp: String {
        "\(compactDate)T\(Self.pad(hour, 2))\(Self.pad(minute, 2))\(Self.pad(second, 2))Z"
    }

    /// `20261125`, SigV4's credential scope date.
    public var compactDate: String {
        "\(Self.pad(year, 4))\(Self.pad(month, 2))\(Self.pad(day, 2))"
    }

    public static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    /// Parses an RFC 3339 date-time: `2026-11-25T10:31:07Z`, with optional fractional seconds
    /// (truncated to the millisecond: a restore target of .3915 must not take a commit observed
    /// at .392), `z`, `t` or a space as separators, and `+hh:mm` or
    /// `-hh:mm` offsets. Returns Unix milliseconds, or nil when the text is not one.
    public static func parseRFC3339(_ text: String) -> Int64? {
        var scanner = DigitScanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.take("-"), let month = scanner.number(digits: 2),
            scanner.take("-"), let day = scanner.number(digits: 2), scanner.takeAny("Tt "),
            let hour = scanner.number(digits: 2), scanner.take(":"), let minute = scanner.number(digits: 2),
            scanner.take(":"), let second = scanner.number(digits: 2)
        else { return nil }
        // Fractional seconds, truncated to milliseconds.
        var milliseconds = 0
        if scanner.take(".") {
            var count = 0
            while let digit = scanner.digit() {
                if count < 3 { milliseconds = milliseconds * 10 + digit }
                count += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 3) { milliseconds *= 10 }
        }
        var offsetMinutes = 0
        if scanner.takeAny("Zz") {
        } else if let sign = scanner.takeSign() {
            guard let offsetHour = scanner.number(digits: 2), scanner.take(":"),
                let offsetMinute = scanner.number(digits: 2), offsetHour <= 23, offsetMinute <= 59
            else { return nil }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
        } else {
            return nil
        }
        guard scanner.atEnd else { return nil }
        let time = CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard time.isValid else { return nil }
        return time.unixMilliseconds + Int64(milliseconds) - Int64(offsetMinutes) * 60_000
    }

    /// Parses an HTTP date in its preferred form (RFC 9110 IMF-fixdate,
    /// `Wed, 25 Nov 2026 10:31:07 GMT`). Returns Unix milliseconds, or nil.
    public static func parseHTTPDate(_ text: String) -> Int64? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT" || parts[5] == "UTC",
            let day = Int(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3]), parts[4].utf8.count == 8
        else { return nil }
        var scanner = DigitScanner(Array(parts[4].utf8))
        guard let hour = scanner.number(digits: 2), scanner.take(":"), let minute = scanner.number(digits: 2),
            scanner.take(":"), let second = scanner.number(digits: 2), scanner.atEnd
        else { return nil }
        let time = CivilTime(year: year, month: monthIndex + 1, day: day, hour: hour, minute: minute, second: second)
        return time.isValid ? time.unixMilliseconds : nil
    }
}

/// Reads fixed-width numbers and separators from ASCII bytes.
private struct DigitScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func digit() -> Int? {
        guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
        defer { index += 1 }
        return Int(bytes[index] - UInt8(ascii: "0"))
    }

    mutating func number(digits: Int) -> Int? {
        var value = 0
        for _ in 0..<digits {
            guard let digit = digit() else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    mutating func take(_ character: Unicode.Scalar) -> Bool { takeAny(String(character)) }

    mutating func takeAny(_ characters: String) -> Bool {
        guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
        index += 1
        return true
    }

    mutating func takeSign() -> Int? {
        if take("+") { return 1 }
        if take("-") { return -1 }
        return nil
    }
}
