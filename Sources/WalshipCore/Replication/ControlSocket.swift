import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's control socket, `<state-dir>/<db>/control.sock` (DESIGN.md section 3): a Unix
/// stream socket, readable and writable by the agent's user only, where `walship snapshot` asks
/// a running agent for a snapshot. One request line per connection ("snapshot"), one reply line
/// ("ok ...", "error ...", or "unavailable ..." while the agent does not replicate the database:
/// see `ControlEndpoint`). The agent holds the state lock, so a socket file left by a killed
/// agent is stale and replaced.
public final class ControlSocket: Sendable {
    public let path: String
    private let descriptor: Int32
    private let closed = Atomic<Bool>(false)

    /// Longest path a `sockaddr_un` holds (including the terminating zero).
    static let maximumPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Listens at `path`, answering each request line with `handler` on its own thread.
    public static func listen(
        at path: String, logger: Logger, handler: @escaping @Sendable (String) -> String
    ) throws -> ControlSocket {
        try? FileSystem.removeIfPresent(path)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw WalshipError(.localIO, "cannot create the control socket: \(errnoText())") }
        guard try withAddress(path, { bind(descriptor, $0, $1) }) == 0, chmod(path, 0o600) == 0,
            Glibc.listen(descriptor, 8) == 0
        else {
            let reason = errnoText()
            Glibc.close(descriptor)
            throw WalshipError(.localIO, "cannot listen on the control socket '\(path)': \(reason)")
        }
        let server = ControlSocket(path: path, descriptor: descriptor)
        Thread {
            while true {
                let connection = accept(descriptor, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    break  // Closed by close().
                }
                Thread {
                    defer { Glibc.close(connection) }
                    guard let request = readLine(connection) else { return }
                    let reply = handler(request.trimmingCharacters(in: .whitespacesAndNewlines))
                    writeAll(connection, reply + "\n")
                }.start()
            }
            logger.debug("control socket closed", metadata: ["control.path": "\(path)"])
        }.start()
        return server
    }

    /// Stops accepting and removes the socket file.
    public func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
        try? FileSystem.removeIfPresent(path)
    }

    /// Sends one request to the agent listening at `path` and returns its reply line, or nil
    /// when no agent listens there.
    public static func request(_ line: String, at path: String) throws -> String? {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw WalshipError(.localIO, "cannot create a socket: \(errnoText())") }
        defer { Glibc.close(descriptor) }
        guard try withAddress(path, { connect(descriptor, $0, $1) }) == 0 else {
            if errno == ENOENT || errno == ECONNREFUSED { return nil }
            throw WalshipError(.localIO, "cannot reach the agent at '\(path)': \(errnoText())")
        }
        writeAll(descriptor, line + "\n")
        guard let reply = readLine(descriptor) else {
            throw WalshipError(.internal, "the agent closed the control connection without answering")
        }
        return reply.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func withAddress(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws -> Int32 {
        let bytes = Array(path.utf8)
        guard bytes.count < maximumPathBytes else {
            throw WalshipError(
                .usage,
                "the control socket path '\(path)' is longer than \(maximumPathBytes - 1) bytes; use a shorter --state-dir"
            )
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
            buffer[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Reads up to a newline (at most 4 KiB).
    private static func readLine(_ descriptor: Int32) -> String? {
        var data: [UInt8] = []
        var byte: UInt8 = 0
        while data.count < 4096 {
            let count = read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if byte == 0x0A { return String(decoding: data, as: UTF8.self) }
            data.append(byte)
        }
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes {
                send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return }
            offset += count
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
