import Testing

@testable import WalshipCore

/// The drift check's rolling scan over pages 2...N: its budget, its wrap, where it stops.
@Suite("Drift rolling scan")
struct RollingScanTests {
    @Test("scans at most its budget from where the last scan ended, wrapping past the last page")
    func budgetAndWrap() {
        var from: UInt32 = 4
        var seen: [UInt32] = []
        let found = WALFollower.rollingScan(pages: 5, budget: 3, from: &from) {
            seen.append($0); return false
        }
        #expect(found == nil)
        #expect(seen == [4, 5, 2])
        #expect(from == 3)
    }

    @Test("stops at the first page that differs and starts there next time")
    func stopsAtDifference() {
        var from: UInt32 = 2
        let found = WALFollower.rollingScan(pages: 10, budget: 100, from: &from) { $0 == 7 }
        #expect(found == 7)
        #expect(from == 7)
    }

    @Test("never scans a page twice in one check, ignores page 1, and resets a position out of range")
    func boundsAndReset() {
        var from: UInt32 = 99
        var seen: [UInt32] = []
        _ = WALFollower.rollingScan(pages: 4, budget: 100, from: &from) {
            seen.append($0); return false
        }
        #expect(seen == [2, 3, 4])
        var none: UInt32 = 2
        #expect(WALFollower.rollingScan(pages: 1, budget: 10, from: &none) { _ in true } == nil)
        #expect(WALFollower.rollingScan(pages: 9, budget: 0, from: &none) { _ in true } == nil)
    }
}
