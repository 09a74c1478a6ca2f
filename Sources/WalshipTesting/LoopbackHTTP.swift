import Foundation
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client for tests of walship's own endpoints on 127.0.0.1 (`--http-addr`):
/// one request per connection, the whole response read until the server closes.
public enum LoopbackHTTP {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String
    }

    public static func request(_ method: String = "GET", port: UInt16, path: String) throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WalshipError(.localIO, "socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw WalshipError(.localIO, "connect to 127.0.0.1:\(port) failed") }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else { throw WalshipError(.localIO, "send to 127.0.0.1:\(port) failed") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { throw WalshipError(.localIO, "recv from 127.0.0.1:\(port) failed") }
            if n == 0 { break }
            bytes += buffer[..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw WalshipError(.localIO, "malformed HTTP response from 127.0.0.1:\(port): \(text)")
        }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw WalshipError(.localIO, "malformed HTTP status line '\(lines[0])'")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    /// Samples of a Prometheus text exposition as `name{labels}` -> value. Fails on any line that
    /// is neither a comment nor a well-formed sample.
    public static func samples(_ exposition: String) throws -> [String: Double] {
        var result: [String: Double] = [:]
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw WalshipError(.usage, "malformed sample line '\(line)'")
            }
            let series = String(line[..<space])
            guard series.first?.isLetter == true, !series.contains(" ") || series.contains("{") else {
                throw WalshipError(.usage, "malformed series '\(series)'")
            }
            result[series] = value
        }
        return result
    }
}
