import Testing

@testable import WalshipCore

@Suite("Value parsing")
struct ValueParsingTests {
    @Test(
        "durations in every documented unit parse",
        arguments: [
            ("100ms", Duration.milliseconds(100)), ("1s", .seconds(1)), ("1.5s", .milliseconds(1500)),
            ("15m", .seconds(900)), ("72h", .seconds(72 * 3600)), ("30d", .seconds(30 * 86400)),
            ("1h30m", .seconds(5400)), ("0s", .zero),
        ])
    func durationsParse(text: String, expected: Duration) throws {
        #expect(try ValueParsing.duration(text) == expected)
    }

    @Test(
        "durations without a unit or with an unknown unit are usage errors",
        arguments: ["10", "", "5 parsecs", "1x", "ms"])
    func badDurationsFail(text: String) {
        #expect { try ValueParsing.duration(text) } throws: { ($0 as? WalshipError)?.code == .usage }
    }

    @Test(
        "byte sizes parse with binary and decimal units",
        arguments: [
            ("512", Int64(512)), ("64KiB", 65536), ("16MiB", 16 << 20), ("1GiB", 1 << 30), ("10MB", 10_000_000),
        ])
    func sizesParse(text: String, expected: Int64) throws {
        #expect(try ValueParsing.byteSize(text) == expected)
    }

    @Test("a bad byte size is a usage error")
    func badSizeFails() {
        #expect { try ValueParsing.byteSize("lots") } throws: { ($0 as? WalshipError)?.code == .usage }
    }

    @Test(
        "formatted durations parse back to the same value",
        arguments: [
            Duration.milliseconds(100), .seconds(1), .milliseconds(1500), .seconds(900), .seconds(259_200),
        ])
    func formatRoundTrips(duration: Duration) throws {
        #expect(try ValueParsing.duration(ValueParsing.format(duration)) == duration)
    }
}
