/// The content checksum of a database state (docs/format.md, "Database checksum"): the XOR of
/// one 64-bit hash per page, `XXH64(page bytes, seed: page number)`, over pages 1 through the
/// database size, except SQLite's lock page (the page holding byte offset 2^30, which SQLite
/// never writes). XOR makes it order-independent, so the agent maintains it as pages change:
/// the old page's hash goes out, the new one's comes in.
///
/// Page 1 is hashed with the header fields that differ between a database and its copy made by
/// the online backup API zeroed (measured on SQLite 3.40.1: the backup copy's file change counter
/// at 24, schema cookie at 40 and version-valid-for at 92 differ from the source's; the in-header
/// database size at 28 and the SQLite version number at 96 are written by whichever library
/// commits the copy), so a snapshot's checksum equals that of the state it copies.
public enum PageChecksum {
    /// Byte ranges of page 1 that are zeroed before hashing.
    public static let maskedRanges: [Range<Int>] = [24..<32, 40..<44, 92..<100]

    /// The hash of page `number` with `bytes` (one page).
    public static func hash(page bytes: UnsafeRawBufferPointer, number: UInt32) -> UInt64 {
        guard number == 1, bytes.count >= 100 else { return XXH64.hash(bytes, seed: UInt64(number)) }
        var masked = Array(bytes)
        for range in maskedRanges { masked.replaceSubrange(range, with: repeatElement(0, count: range.count)) }
        return masked.withUnsafeBytes { XXH64.hash($0, seed: 1) }
    }

    /// The hash of an all-zero page `number` (0 for the lock page, which never counts).
    public static func zeroPageHash(_ number: UInt32, pageSize: Int) -> UInt64 {
        guard number != lockPage(pageSize: pageSize) else { return 0 }
        return [UInt8](repeating: 0, count: pageSize).withUnsafeBytes { hash(page: $0, number: number) }
    }

    /// SQLite's lock page for `pageSize`: the page that holds byte offset 0x40000000. It is never
    /// written (its content is undefined) and so never part of a checksum.
    public static func lockPage(pageSize: Int) -> UInt32 {
        UInt32(0x4000_0000 / pageSize + 1)
    }

    /// Hashes every page of the database file at `path` (a snapshot's copy, a restored file):
    /// returns its checksum and page count, and writes the page hashes (8 bytes per page,
    /// little-endian) to `hashesPath` when given. Reads the file sequentially in 1 MiB chunks.
    public static func hashFile(
        at path: String, pageSize: Int, writingHashesTo hashesPath: String? = nil
    ) throws -> (checksum: UInt64, pages: UInt32) {
        let file = try LocalFile.openForReading(path)
        defer { try? file.close() }
        let output = try hashesPath.map { try LocalFile.create($0, mode: 0o600) }
        defer { try? output?.close() }
        let size = try file.size()
        guard size % Int64(pageSize) == 0 else {
            throw WalshipError(
                .internal, "'\(path)' is \(size) bytes, not a whole number of \(pageSize)-byte pages")
        }
        let pages = UInt32(size / Int64(pageSize))
        let lock = lockPage(pageSize: pageSize)
        let perChunk = max(1, (1 << 20) / pageSize)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: perChunk * pageSize, alignment: 16)
        defer { buffer.deallocate() }
        var hashes = [UInt8](repeating: 0, count: perChunk * 8)
        var total: UInt64 = 0
        var number: UInt32 = 1
        while number <= pages {
            let count = Int(min(UInt32(perChunk), pages - number + 1))
            let want = count * pageSize
            let read = try file.read(
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), at: Int64(number - 1) * Int64(pageSize))
            guard read == want else {
                throw WalshipError(.localIO, "read '\(path)': the file shrank while it was hashed")
            }
            for index in 0..<count {
                let page = number + UInt32(index)
                let value =
                    page == lock
                    ? 0
                    : hash(
                        page: UnsafeRawBufferPointer(rebasing: buffer[(index * pageSize)..<((index + 1) * pageSize)]),
                        number: page)
                total ^= value
                withUnsafeBytes(of: value.littleEndian) {
                    hashes.replaceSubrange((index * 8)..<(index * 8 + 8), with: $0)
                }
            }
            if let output {
                try hashes.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[..<(count * 8)])) }
            }
            number += UInt32(count)
        }
        try output?.close()
        return (total, pages)
    }
}
