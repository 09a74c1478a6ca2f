/// Reads frames from a `-wal` file sequentially from a cursor, verifying each frame's salts and
/// the cumulative checksum chain (sqlite.org/fileformat2.html#walformat: a frame is valid only
/// if its salts match the header's and its checksum continues the chain). Stops at the first
/// invalid frame, at `lastFrame`, or after `maxBytes` once a commit frame is reached.
struct WALScanner {
    /// A commit frame the scan passed, with the chain state after it.
    struct Commit: Equatable {
        var frame: UInt32
        var databasePages: UInt32
        var checksum: WALFormat.Checksum
        /// Frames of this transaction (since the previous commit or the scan start).
        var frameCount: UInt32
    }

    struct Result {
        var commits: [Commit] = []
        /// The last valid frame read and the chain after it.
        var lastValidFrame: UInt32
        var checksumAfterLastValid: WALFormat.Checksum
        /// Frames read after the last commit (provisional, not part of any commit).
        var trailingFrames: UInt32 = 0
        /// Whether the scan stopped at an invalid frame or the end of the file before `lastFrame`.
        var stoppedEarly = false
    }

    let file: LocalFile
    let cursor: WALCursor

    /// Scans frames `cursor.frame + 1 ... lastFrame`, calling `onFrame` with each valid frame's
    /// page number and page bytes (valid only during the call).
    func scan(
        through lastFrame: UInt32, maxBytes: Int64,
        onFrame: (UInt32, UnsafeRawBufferPointer) throws -> Void
    ) throws -> Result {
        let pageSize = cursor.pageSize
        let frameSize = WALFormat.frameHeaderSize + pageSize
        let framesPerRead = max(1, min(256, (4 << 20) / frameSize))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: framesPerRead * frameSize, alignment: 16)
        defer { buffer.deallocate() }
        var result = Result(lastValidFrame: cursor.frame, checksumAfterLastValid: cursor.checksum)
        var checksum = cursor.checksum
        var frame = cursor.frame
        var framesSinceCommit: UInt32 = 0
        var bytesRead: Int64 = 0
        while frame < lastFrame {
            let batch = Int(min(UInt32(framesPerRead), lastFrame - frame))
            let offset = WALFormat.frameOffset(frame + 1, pageSize: pageSize)
            let count = try file.read(
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(batch * frameSize)]), at: offset)
            let whole = count / frameSize
            for index in 0..<whole {
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[(index * frameSize)..<((index + 1) * frameSize)])
                let header = WALFormat.FrameHeader.parse(bytes)
                guard header.salt1 == cursor.salt1, header.salt2 == cursor.salt2, header.pageNumber > 0 else {
                    result.stoppedEarly = true
                    return result
                }
                let computed = WALFormat.frameChecksum(
                    frame: bytes, bigEndian: cursor.bigEndianChecksum, seed: checksum)
                guard computed == header.checksum else {
                    result.stoppedEarly = true
                    return result
                }
                checksum = computed
                frame += 1
                framesSinceCommit += 1
                try onFrame(header.pageNumber, UnsafeRawBufferPointer(rebasing: bytes[WALFormat.frameHeaderSize...]))
                result.lastValidFrame = frame
                result.checksumAfterLastValid = checksum
                result.trailingFrames = framesSinceCommit
                bytesRead += Int64(frameSize)
                if header.isCommit {
                    result.commits.append(
                        Commit(
                            frame: frame, databasePages: header.databaseSize, checksum: checksum,
                            frameCount: framesSinceCommit))
                    framesSinceCommit = 0
                    result.trailingFrames = 0
                    if bytesRead >= maxBytes { return result }
                }
            }
            if whole < batch {
                result.stoppedEarly = true
                return result
            }
        }
        return result
    }
}
