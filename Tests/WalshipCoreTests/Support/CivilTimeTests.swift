import Foundation
import Testing

@testable import WalshipCore

@Suite("Civil time and RFC 3339")
struct CivilTimeTests {
    @Test("formats Unix milliseconds as RFC 3339 in UTC")
    func formatsKnownTimes() {
        #expect(CivilTime(unixMilliseconds: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(CivilTime(unixMilliseconds: 1_795_602_667_250).rfc3339 == "2026-11-25T10:31:07.250Z")
        #expect(CivilTime(unixMilliseconds: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(CivilTime(unixMilliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(CivilTime(unixMilliseconds: 1_795_602_667_250).compactTimestamp == "20261125T103107Z")
    }

    @Test("agrees with Foundation's ISO 8601 formatter on random times, both ways")
    func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: 0...7_258_118_400_000, using: &generator)  // 1970 to 2200
            let text = CivilTime(unixMilliseconds: milliseconds).rfc3339
            #expect(text == formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000)))
            #expect(CivilTime.parseRFC3339(text) == milliseconds)
        }
    }

    @Test("parses offsets, fractions and the separators RFC 3339 allows")
    func parsesVariants() {
        let base: Int64 = 1_795_602_667_000
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07Z") == base)
        #expect(CivilTime.parseRFC3339("2026-11-25t10:31:07z") == base)
        #expect(CivilTime.parseRFC3339("2026-11-25 10:31:07Z") == base)
        #expect(CivilTime.parseRFC3339("2026-11-25T11:31:07+01:00") == base)
        #expect(CivilTime.parseRFC3339("2026-11-25T05:01:07-05:30") == base)
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.25Z") == base + 250)
        // Truncated, never rounded up: a target must not reach a commit observed after it.
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.2505Z") == base + 250)
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.3915Z") == base + 391)
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.123456789Z") == base + 123)
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.99995Z") == base + 999)
        #expect(CivilTime.parseRFC3339("2026-11-25T10:31:07.5Z") == base + 500)
        #expect(CivilTime.parseRFC3339("2024-02-29T00:00:00Z") == 1_709_164_800_000)
    }

    @Test(
        "rejects text that is not an RFC 3339 date-time",
        arguments: [
            "", "2026-11-25", "2026-11-25T10:31Z", "2026-11-25T10:31:07", "2026-11-25T10:31:07.Z",
            "2026-11-25T10:31:07Zjunk", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-31T00:00:00Z",
            "2026-11-25T24:00:00Z", "2026-11-25T10:60:00Z", "2026-11-25T10:31:60Z", "2026-11-25T10:31:07+1:00",
            "2026-11-25T10:31:07+24:00", "26-11-25T10:31:07Z", "2026-11-25T10:31:07 +01:00",
        ])
    func rejectsMalformed(_ text: String) {
        #expect(CivilTime.parseRFC3339(text) == nil)
    }

    @Test("parses HTTP dates (IMF-fixdate)")
    func parsesHTTPDates() {
        #expect(CivilTime.parseHTTPDate("Wed, 25 Nov 2026 10:31:07 GMT") == 1_795_602_667_000)
        #expect(CivilTime.parseHTTPDate("Wed, 25 Nov 2026 10:31:07") == nil)
        #expect(CivilTime.parseHTTPDate("Wed, 31 Nov 2026 10:31:07 GMT") == nil)
        #expect(CivilTime.parseHTTPDate("Wed, 25 Foo 2026 10:31:07 GMT") == nil)
        // A server's absurd year is no date, never an arithmetic trap (found by review).
        #expect(CivilTime.parseHTTPDate("Wed, 25 Nov 999999999 10:31:07 GMT") == nil)
        #expect(CivilTime.parseHTTPDate("Wed, 25 Nov -9223372036854775807 10:31:07 GMT") == nil)
        #expect(CivilTime(unixMilliseconds: Int64.min).year < 0)
        #expect(CivilTime(unixMilliseconds: Int64.max).year > 9999)
    }

    @Test("restore targets: RFC 3339, relative times, and times before 1970 at the epoch (before any window)")
    func restoreTargets() throws {
        #expect(try Timestamp.parse(" 2026-11-25T10:31:07.25Z ") == 1_795_602_667_250)
        // A target between two milliseconds never reaches the later one (found by review: .3915
        // was rounded to .392 and the restore took a commit observed at .392).
        #expect(try Timestamp.parse("2026-11-25T10:31:07.3915Z") == 1_795_602_667_391)
        let now = Date(timeIntervalSince1970: 1_795_602_667.25)
        #expect(try Timestamp.parse("-15m", now: now) == 1_795_602_667_250 - 900_000)
        #expect(try Timestamp.parse("1969-12-31T23:59:59Z") == 0)
        #expect(try Timestamp.parse("-36500d", now: now) == 0)
        #expect(throws: WalshipError.self) { try Timestamp.parse("yesterday") }
        #expect(Timestamp.format(milliseconds: 1_795_602_667_250) == "2026-11-25T10:31:07.250Z")
    }
}
