// Control: identical to baseline, but linked against libcurl (as walship already is, via its CCurl target),
// without FoundationNetworking. Splits the baseline_net cost into libcurl vs libFoundationNetworking.
// Minimal hand-written HTTP server, shaped like walship's MetricsServer:
// one listening socket, an accept loop on its own Thread, one Thread per connection
// (at most 32 at once; the rest wait in the listen backlog), read the request head,
// write a response, close. Links Foundation only.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let port = UInt16(CommandLine.arguments.dropFirst().first ?? "8080") ?? 8080

// ~4 KB text body, the same bytes as the flyingfox binary builds.
func makeMetrics() -> String {
    var s = ""
    var i = 0
    while s.utf8.count < 4000 {
        s += "# HELP walship_metric_\(i) A metric line for measuring.\n# TYPE walship_metric_\(i) counter\nwalship_metric_\(i) \(i * 12345)\n"
        i += 1
    }
    return s
}
let metricsBody = makeMetrics()

let maxConnections = 32
let active = NSLock()
nonisolated(unsafe) var activeCount = 0

func headIsComplete(_ b: [UInt8]) -> Bool {
    if b.count < 4 { return false }
    for i in 3..<b.count where b[i] == 10 && b[i - 1] == 13 && b[i - 2] == 10 && b[i - 3] == 13 { return true }
    return false
}

func answer(_ fd: Int32) {
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var request: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !headIsComplete(request) {
        guard request.count < 8192 else { return }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return }
        request += buffer[..<n]
    }
    let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
    let parts = line.split(separator: " ")
    let method = parts.first.map(String.init) ?? ""
    let path = parts.count > 1 ? String(parts[1]) : ""
    let status: String, body: String
    switch (method, path) {
    case ("GET", "/healthz"): (status, body) = ("200 OK", "ok")
    case ("GET", "/metrics"): (status, body) = ("200 OK", metricsBody)
    default: (status, body) = ("404 Not Found", "not found\n")
    }
    let head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
    let bytes = Array(head.utf8) + Array(body.utf8)
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return }
        sent += n
    }
}

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
precondition(listener >= 0, "socket")
var one: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
var addr = sockaddr_in()
addr.sin_family = sa_family_t(AF_INET)
addr.sin_port = port.bigEndian
addr.sin_addr.s_addr = inet_addr("127.0.0.1")
let bound = withUnsafePointer(to: &addr) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
precondition(bound == 0 && listen(listener, 1024) == 0, "bind/listen failed: errno \(errno)")

let acceptThread = Thread {
    while true {
        while active.withLock({ activeCount }) >= maxConnections { usleep(5000) }
        let fd = accept(listener, nil, nil)
        if fd < 0 {
            if errno != EINTR && errno != ECONNABORTED { usleep(100_000) }
            continue
        }
        active.withLock { activeCount += 1 }
        let t = Thread {
            answer(fd)
            close(fd)
            active.withLock { activeCount -= 1 }
        }
        t.start()
    }
}
acceptThread.name = "http"
acceptThread.start()
print("baseline listening on 127.0.0.1:\(port)")
fflush(nil)
while true { Thread.sleep(forTimeInterval: 3600) }
