import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP endpoint of `--http-addr HOST:PORT`: `GET /metrics` answers with
/// `MetricsExposition`, `GET /healthz` with `ok`; anything else is 404 (or 405 for another
/// method). One thread accepts and answers one connection at a time (scrapes are rare and
/// small); a client that does not send its request within 5 seconds is dropped. It never touches
/// the database or the store.
public final class MetricsServer: @unchecked Sendable {  // `listener` is written once, closed once.
    private let listener: Int32
    public let port: UInt16
    private let render: @Sendable () -> String
    private let logger: Logger
    private let closed = Mutex(false)

    private init(listener: Int32, port: UInt16, render: @escaping @Sendable () -> String, logger: Logger) {
        self.listener = listener
        self.port = port
        self.render = render
        self.logger = logger
    }

    /// Listens on `address` (`127.0.0.1:9090`, `[::1]:9090`, `:9090` for every interface,
    /// port 0 for any free port) and starts serving.
    public static func start(
        address: String, logger: Logger, render: @escaping @Sendable () -> String
    ) throws -> MetricsServer {
        let (host, portText) = try split(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, portText, &hints, &list)
        guard status == 0, let first = list else {
            throw WalshipError(.usage, "invalid http-addr '\(address)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LocalFile.error("socket for http-addr", address, errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw WalshipError(.usage, "cannot listen on http-addr '\(address)': \(FileSystem.describe(errno: code))")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let port = withUnsafeMutablePointer(to: &bound) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> UInt16 in
                getsockname(fd, address, &length)
                if address.pointee.sa_family == sa_family_t(AF_INET6) {
                    return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        UInt16(bigEndian: $0.pointee.sin6_port)
                    }
                }
                return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt16(bigEndian: $0.pointee.sin_port)
                }
            }
        }
        let server = MetricsServer(listener: fd, port: port, render: render, logger: logger)
        let thread = Thread { server.serve() }
        thread.name = "walship-http"
        thread.start()
        logger.info("serving metrics", metadata: ["http.addr": "\(address)", "http.port": "\(port)"])
        return server
    }

    /// `host:port`, `[v6]:port` or `:port`.
    public static func split(_ address: String) throws -> (host: String?, port: String) {
        guard let colon = address.lastIndex(of: ":") else {
            throw WalshipError(.usage, "invalid http-addr '\(address)': use HOST:PORT, [IPv6]:PORT or :PORT")
        }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        guard let number = UInt16(port), String(number) == port else {
            throw WalshipError(.usage, "invalid http-addr '\(address)': the port must be a number from 0 to 65535")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? nil : host, port)
    }

    /// Stops listening; a request being answered finishes.
    public func close() {
        let wasClosed = closed.withLock { value in
            defer { value = true }
            return value
        }
        guard !wasClosed else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func serve() {
        defer { Glibc.close(listener) }
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if !closed.withLock({ $0 }) {
                    logger.error(
                        "metrics endpoint stopped", metadata: ["error": "\(FileSystem.describe(errno: errno))"])
                }
                return
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            answer(connection)
            Glibc.close(connection)
        }
    }

    private func answer(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // The request head, up to 8 KiB; the body (there should be none) is ignored.
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while request.count < 8192 {
            let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[..<n]
            if request.count >= 4,
                (0...(request.count - 4)).contains(where: { request[$0..<$0 + 4].elementsEqual(end) })
            {
                break
            }
        }
        let line = String(
            decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let (status, type, body) = respond(
            method: parts.first.map(String.init) ?? "", target: parts.count > 1 ? String(parts[1]) : "")
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + (parts.first == "HEAD" ? [] : Array(body.utf8))
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                send(connection, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return }
            sent += n
        }
    }

    func respond(method: String, target: String) -> (status: String, type: String, body: String) {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        let text = "text/plain; charset=utf-8"
        guard path == "/metrics" || path == "/healthz" else { return ("404 Not Found", text, "not found\n") }
        guard method == "GET" || method == "HEAD" else { return ("405 Method Not Allowed", text, "use GET\n") }
        if path == "/healthz" { return ("200 OK", text, "ok\n") }
        return ("200 OK", MetricsExposition.contentType, render())
    }
}
