import Crypto
import Foundation
import WalshipCore

/// The two digests every upload carries: SHA-256 (hex, for `x-amz-content-sha256` and the
/// signature) and MD5 (base64, for `Content-MD5`), computed in one pass with bounded memory.
struct PayloadDigest: Sendable, Equatable {
    var sha256Hex: String
    var md5Base64: String

    static func of(_ bytes: some ContiguousBytes) -> PayloadDigest {
        var sha = SHA256()
        var md5 = Insecure.MD5()
        bytes.withUnsafeBytes { raw in
            sha.update(bufferPointer: raw)
            md5.update(bufferPointer: raw)
        }
        return PayloadDigest(sha: sha, md5: md5)
    }

    /// Digests `length` bytes of the file at `path` starting at `offset`.
    static func of(file path: String, offset: Int64, length: Int64) throws -> PayloadDigest {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        var sha = SHA256()
        var md5 = Insecure.MD5()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position: Int64 = 0
        while position < length {
            let want = Int(min(Int64(buffer.count), length - position))
            let read = try buffer.withUnsafeMutableBytes { raw in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<want]), at: offset + position)
            }
            guard read == want else {
                throw WalshipError(.localIO, "read upload body '\(path)': the file is shorter than expected")
            }
            buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[..<read])
                sha.update(bufferPointer: chunk)
                md5.update(bufferPointer: chunk)
            }
            position += Int64(read)
        }
        return PayloadDigest(sha: sha, md5: md5)
    }

    private init(sha: SHA256, md5: Insecure.MD5) {
        sha256Hex = sha.finalize().map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        md5Base64 = Data(md5.finalize()).base64EncodedString()
    }

    init(sha256Hex: String, md5Base64: String) {
        self.sha256Hex = sha256Hex
        self.md5Base64 = md5Base64
    }

    /// SHA-256 of the empty body.
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
