import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// The state of one transfer that curl's callbacks work on: the body source with its read
/// position, the response headers, and where the response body goes. Used only by the worker
/// thread running the transfer.
final class CurlRequestContext {
    let sink: HTTPResponseSink
    let body: HTTPRequestBody
    let cancelled: CancelFlag

    private(set) var status = 0
    private(set) var headers: [String: String] = [:]
    private(set) var memory: [UInt8] = []
    private(set) var received: Int64 = 0
    /// Set when a callback failed; `perform` throws it instead of curl's generic abort code.
    private(set) var failure: WalshipError?

    private var bodyFile: LocalFile?
    private var bodyPosition: Int64 = 0
    private var outputFile: LocalFile?
    /// Error bodies are kept in memory up to this size (an S3 error document is small).
    private static let errorBodyLimit = 64 * 1024

    init(sink: HTTPResponseSink, body: HTTPRequestBody, cancelled: CancelFlag) {
        self.sink = sink
        self.body = body
        self.cancelled = cancelled
    }

    func open() throws {
        if case .file(let path, _, _) = body {
            bodyFile = try LocalFile.openForReading(path)
        }
    }

    func close() {
        try? bodyFile?.close()
        bodyFile = nil
        try? outputFile?.close()
        outputFile = nil
    }

    // MARK: Request body

    /// Copies the next body bytes into `buffer`; returns the count, 0 at the end, -1 on error.
    func provide(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        switch body {
        case .none:
            return 0
        case .bytes(let bytes):
            let start = Int(bodyPosition)
            let count = min(buffer.count, bytes.count - start)
            guard count > 0 else { return 0 }
            bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: count)
            }
            bodyPosition += Int64(count)
            return count
        case .file(_, let offset, let length):
            let count = Int(min(Int64(buffer.count), length - bodyPosition))
            guard count > 0, let bodyFile else { return 0 }
            do {
                let read = try bodyFile.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]), at: offset + bodyPosition)
                guard read == count else {
                    failure = WalshipError(.localIO, "upload body '\(bodyFile.path)' is shorter than expected")
                    return -1
                }
                bodyPosition += Int64(read)
                return read
            } catch {
                failure = error as? WalshipError ?? WalshipError(.localIO, "read upload body: \(error)")
                return -1
            }
        }
    }

    /// Rewinds the body (curl asks before resending it).
    func seek(to offset: Int64) -> Bool {
        guard offset >= 0, offset <= body.length else { return false }
        bodyPosition = offset
        return true
    }

    // MARK: Response

    /// One header line, or a status line ("HTTP/1.1 200 OK"), which starts a new header block
    /// (after "100 Continue" the real response follows).
    func header(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            let parts = text.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = [:]
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        // "\r\n" is one Character in Swift: trim with isWhitespace, not by dropping "\n".
        let name = text[..<colon].trimmingWhitespace().lowercased()
        let value = text[text.index(after: colon)...].trimmingWhitespace()
        headers[name] = value
    }

    /// Response body bytes. Returns false to abort the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        received += Int64(bytes.count)
        let success = (200..<300).contains(status)
        switch sink {
        case .memory(let limit):
            let cap = success ? limit : Self.errorBodyLimit
            if memory.count + bytes.count > cap {
                if !success { return true }  // Keep the start of a long error body; drop the rest.
                failure = WalshipError(.storeProtocol, "response body is larger than \(limit) bytes")
                return false
            }
            memory.append(contentsOf: bytes)
            return true
        case .file(let path):
            if !success {
                if memory.count + bytes.count <= Self.errorBodyLimit { memory.append(contentsOf: bytes) }
                return true
            }
            do {
                if outputFile == nil {
                    outputFile = try LocalFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
                }
                try outputFile!.write(bytes)
                return true
            } catch {
                failure = error as? WalshipError ?? WalshipError(.localIO, "write download '\(path)': \(error)")
                return false
            }
        }
    }

    /// After a completed transfer: a successful file download with an empty body still gets its
    /// (empty) file; a failed one leaves none.
    func finishFileOutput(status: Int) throws {
        guard case .file(let path) = sink else { return }
        if (200..<300).contains(status) {
            if outputFile == nil {
                outputFile = try LocalFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
            }
            try outputFile?.close()
            outputFile = nil
        } else {
            discardFileOutput()
        }
    }

    /// Removes a partial download.
    func discardFileOutput() {
        guard case .file(let path) = sink else { return }
        try? outputFile?.close()
        outputFile = nil
        _ = unlink(path)
    }
}

extension StringProtocol {
    /// The string without leading and trailing whitespace (including "\r\n").
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}
