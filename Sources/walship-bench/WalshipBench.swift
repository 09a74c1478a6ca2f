import Foundation
import Logging
import WalshipCore
import WalshipS3

/// `walship-bench`: drivers for the benchmark scripts in bench/ (not a user command).
///
///     walship-bench s3-put FILE KEY     upload FILE to KEY
///     walship-bench s3-get KEY FILE     download KEY to FILE (must not exist)
///
/// The store comes from AWS_ENDPOINT_URL, WALSHIP_BENCH_BUCKET and the usual credential
/// variables. Prints seconds and MB/s on stdout.
@main
struct WalshipBench {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            let environment = ProcessInfo.processInfo.environment
            guard arguments.count == 3, let bucket = environment["WALSHIP_BENCH_BUCKET"] else {
                throw WalshipError(
                    .usage, "usage: walship-bench s3-put FILE KEY | s3-get KEY FILE (set WALSHIP_BENCH_BUCKET)")
            }
            let transport = CurlTransport()
            let credentials = try CredentialsResolver.provider(
                explicit: nil, profile: nil, region: "us-east-1", environment: environment,
                homeDirectory: environment["HOME"], transport: transport)
            let store = try S3ObjectStore(
                configuration: S3Configuration(bucket: bucket, endpoint: environment["AWS_ENDPOINT_URL"]),
                credentials: credentials, transport: transport)
            let start = ContinuousClock.now
            let bytes: Int64
            switch arguments[0] {
            case "s3-put":
                try await store.put(arguments[2], body: .file(path: arguments[1]))
                bytes = FileSystem.size(arguments[1]) ?? 0
            case "s3-get":
                bytes = try await store.download(arguments[1], to: arguments[2])
            default:
                throw WalshipError(.usage, "unknown benchmark command '\(arguments[0])'")
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(String(format: "%.3f %.1f", seconds, Double(bytes) / seconds / 1e6))
        } catch let error as WalshipError {
            FileHandle.standardError.write(Data("walship-bench: \(error)\n".utf8))
            exit(error.code.exitCode)
        } catch {
            FileHandle.standardError.write(Data("walship-bench: \(error)\n".utf8))
            exit(1)
        }
    }
}
