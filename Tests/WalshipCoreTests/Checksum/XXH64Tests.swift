import Testing

@testable import WalshipCore

@Suite("XXH64")
struct XXH64Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var input: [UInt8]
        var seed: UInt64
        var expected: UInt64
        var testDescription: String { "\(input.count) bytes, seed \(seed)" }
    }

    static let counting: [UInt8] = (0..<4096).map { UInt8($0 & 255) }

    /// Values from the reference implementation (python-xxhash 3, xxhash 0.8).
    static let vectors: [Vector] = [
        Vector(input: [], seed: 0, expected: 0xef46_db37_51d8_e999),
        Vector(input: Array("a".utf8), seed: 0, expected: 0xd24e_c4f1_a98c_6e5b),
        Vector(input: Array("abc".utf8), seed: 0, expected: 0x44bc_2cf5_ad77_0999),
        Vector(input: Array("Nobody inspects the spammish repetition".utf8), seed: 0, expected: 0xfbce_a83c_8a37_8bf1),
        Vector(input: counting, seed: 7, expected: 0xc501_4805_163e_b163),
        Vector(input: Array(counting.prefix(100)), seed: 1, expected: 0x3d19_a3a2_098a_7023),
        Vector(input: Array(counting.prefix(33)), seed: 0, expected: 0x0c53_5d1a_cafb_8ead),
    ]

    @Test(
        "matches the reference implementation on every code path (empty, tail bytes, 4- and 8-byte lanes, 32-byte stripes)",
        arguments: vectors)
    func referenceValues(vector: Vector) {
        #expect(XXH64.hash(vector.input, seed: vector.seed) == vector.expected)
    }
}
