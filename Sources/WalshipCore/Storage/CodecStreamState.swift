/// Where a `Compressor`'s or `Decompressor`'s stream stands. After `finish`, or after a call that
/// threw (the stream may have consumed part of its input), every call is refused with `.internal`.
struct CodecStreamState {
    private enum Phase { case open, finished, failed }

    /// What the stream does, for errors: "compress zstd data".
    let operation: String
    private var phase = Phase.open

    init(operation: String) {
        self.operation = operation
    }

    /// Throws unless the stream is open.
    func checkOpen() throws {
        switch phase {
        case .open: return
        case .finished: throw WalshipError(.internal, "\(operation): the stream is already finished")
        case .failed: throw WalshipError(.internal, "\(operation): the stream failed earlier")
        }
    }

    /// Starts a call: the stream counts as failed until `end` (a call that throws never reaches it).
    mutating func begin() throws {
        try checkOpen()
        phase = .failed
    }

    /// Ends a call that succeeded; `finished` ends the stream.
    mutating func end(finished: Bool = false) {
        phase = finished ? .finished : .open
    }
}
