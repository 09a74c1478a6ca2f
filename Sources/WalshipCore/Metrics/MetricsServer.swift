import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP endpoint of `--http-addr HOST:PORT`: `GET /metrics` answers with
/// `MetricsExposition`, `GET /` with the status page and `GET /api/v1/status` with the same as
/// JSON (`StatusReport`; both take `?at=TIME`), `GET /healthz` with `ok` (the process is up),
/// `GET /readyz` with `ready` once start-up is done (else 503 `starting`); anything else is 404
/// (or 405 for another method). Each connection is answered on a thread of its own, at most
/// `maxConnections` at once; more wait in the listen backlog until a thread is free. A client
/// gets 5 seconds in all to send its request, so slow or idle clients hold a thread at most that
/// long. It never touches the database or the store.
public final class MetricsServer: @unchecked Sendable {  // `listener` is guarded by `state`.
    static let maxConnections = 32
    static let requestDeadline: Duration = .seconds(5)

    private let listener: Int32
    public let port: UInt16
    private let render: @Sendable () -> String
    private let status: @Sendable (_ at: String?) -> StatusReport
    /// Whether start-up is done (`/readyz`).
    let ready: @Sendable () -> Bool
    private let logger: Logger
    /// Whether `close` was called, and whether the listening descriptor is still open.
    private let state = Mutex((closed: false, open: true))
    private let connections = Atomic<Int>(0)

    private init(
        listener: Int32, port: UInt16, render: @escaping @Sendable () -> String,
        status: @escaping @Sendable (_ at: String?) -> StatusReport, ready: @escaping @Sendable () -> Bool,
        logger: Logger
    ) {
        self.listener = listener
        self.port = port
        self.render = render
        self.status = status
        self.ready = ready
        self.logger = logger
    }

    /// Listens on `address` (`127.0.0.1:9090`, `[::1]:9090`, `:9090` for every interface, IPv6
    /// and IPv4 where the host has both; port 0 for any free port) and starts serving.
    public static func start(
        address: String, logger: Logger, ready: @escaping @Sendable () -> Bool = { true },
        status: @escaping @Sendable (_ at: String?) -> StatusReport = { _ in
            StatusReport.make([], version: "", sqliteVersion: "", ready: true, at: nil)
        },
        render: @escaping @Sendable () -> String
    ) throws -> MetricsServer {
        let (host, portText) = try split(address)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host, portText, &hints, &list)
        guard lookup == 0, list != nil else {
            throw WalshipError(.usage, "invalid http-addr '\(address)': \(String(cString: gai_strerror(lookup)))")
        }
        defer { freeaddrinfo(list) }
        var candidates: [UnsafeMutablePointer<addrinfo>] = []
        var next = list
        while let entry = next {
            candidates.append(entry)
            next = entry.pointee.ai_next
        }
        // Every interface: the IPv6 wildcard accepts IPv4 too (IPV6_V6ONLY off).
        if host == nil { candidates.sort { $0.pointee.ai_family == AF_INET6 && $1.pointee.ai_family != AF_INET6 } }
        var failure: Int32 = 0
        for entry in candidates {
            let fd = socket(entry.pointee.ai_family, entry.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                failure = errno
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if entry.pointee.ai_family == AF_INET6 && host == nil {
                var off: Int32 = 0
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
            }
            guard bind(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0, listen(fd, 1024) == 0 else {
                failure = errno
                Glibc.close(fd)
                continue
            }
            let server = MetricsServer(
                listener: fd, port: boundPort(fd), render: render, status: status, ready: ready, logger: logger)
            let thread = Thread { server.serve() }
            thread.name = "walship-http"
            thread.start()
            logger.info("serving metrics", metadata: ["http.addr": "\(address)", "http.port": "\(server.port)"])
            return server
        }
        throw WalshipError(.usage, "cannot listen on http-addr '\(address)': \(FileSystem.describe(errno: failure))")
    }

    private static func boundPort(_ fd: Int32) -> UInt16 {
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &bound) { pointer in
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

    /// Stops listening; requests being answered finish.
    public func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            if state.open { shutdown(listener, Int32(SHUT_RDWR)) }
        }
    }

    private func serve() {
        defer {
            state.withLock { state in
                state.open = false
                Glibc.close(listener)
            }
        }
        while true {
            // At the limit, the next connection waits in the backlog for a free thread.
            while connections.load(ordering: .relaxed) >= Self.maxConnections && !state.withLock({ $0.closed }) {
                OnlineBackup.sleep(.milliseconds(5))
            }
            let connection = accept(listener, nil, nil)
            if state.withLock({ $0.closed }) {
                if connection >= 0 { Glibc.close(connection) }
                return
            }
            if connection < 0 {
                // Out of descriptors or buffers, or a connection that went away: try again.
                if errno != EINTR && errno != ECONNABORTED {
                    logger.warning(
                        "metrics endpoint cannot accept", metadata: ["error": "\(FileSystem.describe(errno: errno))"])
                    OnlineBackup.sleep(.milliseconds(100))
                }
                continue
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            connections.add(1, ordering: .relaxed)
            let thread = Thread { [self] in
                answer(connection)
                Glibc.close(connection)
                connections.subtract(1, ordering: .relaxed)
            }
            thread.name = "walship-http-connection"
            thread.start()
        }
    }

    /// Reads the request head (up to 8 KiB, within `requestDeadline` in all) and answers it.
    private func answer(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let deadline = ContinuousClock.now + Self.requestDeadline
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !Self.headIsComplete(request) {
            guard request.count < 8192 else { return }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return }
            var descriptor = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, left.milliseconds)))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }
            let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += buffer[..<n]
        }
        let line = String(
            decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let method = parts.first.map(String.init) ?? ""
        let (status, type, body) = respond(method: method, target: parts.count > 1 ? String(parts[1]) : "")
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + (method == "HEAD" ? [] : Array(body.utf8))
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                send(connection, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return }
            sent += n
        }
    }

    /// Whether `bytes` hold a whole request head (ended by an empty line, CRLF or bare LF).
    static func headIsComplete(_ bytes: [UInt8]) -> Bool {
        let lf = UInt8(ascii: "\n")
        var previousLineEnd: Int?
        for index in bytes.indices where bytes[index] == lf {
            if let previous = previousLineEnd {
                let between = bytes[(previous + 1)..<index]
                if between.isEmpty || between.elementsEqual([UInt8(ascii: "\r")]) { return true }
            }
            previousLineEnd = index
        }
        return false
    }

    func respond(method: String, target: String) -> (status: String, type: String, body: String) {
        var path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        // The absolute form (`http://host:port/metrics`), which proxies send.
        if let scheme = path.range(of: "://") {
            let rest = path[scheme.upperBound...]
            path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        let text = "text/plain; charset=utf-8"
        guard ["/", "/api/v1/status", "/metrics", "/healthz", "/readyz"].contains(path) else {
            return ("404 Not Found", text, "not found\n")
        }
        guard method == "GET" || method == "HEAD" else { return ("405 Method Not Allowed", text, "use GET\n") }
        switch path {
        case "/healthz": return ("200 OK", text, "ok\n")
        case "/readyz": return ready() ? ("200 OK", text, "ready\n") : ("503 Service Unavailable", text, "starting\n")
        case "/metrics": return ("200 OK", MetricsExposition.contentType, render())
        case "/": return ("200 OK", StatusPage.contentType, StatusPage.render(status(Self.query(target, "at"))))
        default:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json = (try? encoder.encode(status(Self.query(target, "at")))).map {
                String(decoding: $0, as: UTF8.self)
            }
            return ("200 OK", "application/json", (json ?? "{}") + "\n")
        }
    }

    /// The value of `name` in the request target's query, form-decoded (`+` is a space).
    static func query(_ target: String, _ name: String) -> String? {
        guard let mark = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.first == Substring(name) else { continue }
            let value = parts.count > 1 ? String(parts[1]).replacingOccurrences(of: "+", with: " ") : ""
            return value.removingPercentEncoding ?? value
        }
        return nil
    }
}
