// The same two routes with FlyingFox 0.27.1's HTTPServer (default ePoll pool, logging disabled).
import Foundation
import FlyingFox
import FlyingSocks

let port = UInt16(CommandLine.arguments.dropFirst().first ?? "8080") ?? 8080

// ~4 KB text body, the same bytes as the baseline binary builds.
func makeMetrics() -> String {
    var s = ""
    var i = 0
    while s.utf8.count < 4000 {
        s += "# HELP walship_metric_\(i) A metric line for measuring.\n# TYPE walship_metric_\(i) counter\nwalship_metric_\(i) \(i * 12345)\n"
        i += 1
    }
    return s
}
let metricsBody = Data(makeMetrics().utf8)
let okBody = Data("ok".utf8)
let textHeaders: HTTPHeaders = [.contentType: "text/plain; charset=utf-8"]

let server = HTTPServer(address: try .inet(ip4: "127.0.0.1", port: port), logger: .disabled)
await server.appendRoute("GET /healthz") { _ in
    HTTPResponse(statusCode: .ok, headers: textHeaders, body: okBody)
}
await server.appendRoute("GET /metrics") { _ in
    HTTPResponse(statusCode: .ok, headers: textHeaders, body: metricsBody)
}
print("flyingfox listening on 127.0.0.1:\(port)")
fflush(nil)
try await server.run()
