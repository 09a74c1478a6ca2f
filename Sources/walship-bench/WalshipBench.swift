import Foundation
import Logging
import WalshipCore
import WalshipS3

/// `walship-bench`: drivers for the benchmark scripts in bench/ (not a user command).
///
///     walship-bench s3-put FILE KEY     upload FILE to KEY
///     walship-bench s3-get KEY FILE     download KEY to FILE (must not exist)
///     walship-bench make-replica DIR N  write a replica of N small objects into the directory
///                                       DIR (one generation: an old snapshot and N-3 segments
///                                       that a newer snapshot supersedes, then one segment)
///
/// The store comes from AWS_ENDPOINT_URL, WALSHIP_BENCH_BUCKET and the usual credential
/// variables. Prints seconds and MB/s on stdout.
@main
struct WalshipBench {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            if arguments.first == "make-replica", arguments.count == 3, let count = Int(arguments[2]), count >= 4 {
                try makeReplica(directory: arguments[1], objects: count)
                return
            }
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

    /// Object files as `rclone serve s3` serves a directory: a snapshot at txid 0, segments of one
    /// transaction each (1 ms apart), a snapshot after them, and one segment after that, all an
    /// hour old or more, so that a prune with a short retention deletes all but the last two.
    static func makeReplica(directory: String, objects count: Int) throws {
        let layout = ReplicaLayout(prefix: "bench")
        let startMs = UInt64(Date().timeIntervalSince1970 * 1000) - 7_200_000
        let generation = GenerationID.make(milliseconds: startMs).value
        func write(_ header: ObjectHeader) throws {
            let path = "\(directory)/\(layout.key(for: header))"
            try FileSystem.createDirectories(FileSystem.directory(of: path), mode: 0o755)
            _ = try ObjectFile.write(to: path, header: header) { emit in
                try [UInt8](repeating: 1, count: 64).withUnsafeBytes { try emit($0) }
            }
        }
        func snapshot(txid: UInt64, ms: UInt64) -> ObjectHeader {
            ObjectHeader(
                kind: .snapshot, codec: .none, reason: txid == 0 ? .firstStart : .none, pageSize: 4096,
                generation: generation, firstTxid: txid, lastTxid: txid, firstMs: ms, lastMs: ms)
        }
        func segment(txid: UInt64, ms: UInt64) -> ObjectHeader {
            ObjectHeader(
                kind: .segment, codec: .none, pageSize: 4096, generation: generation, firstTxid: txid, lastTxid: txid,
                firstMs: ms, lastMs: ms)
        }
        let segments = UInt64(count - 3)
        try write(snapshot(txid: 0, ms: startMs))
        for txid in 1...segments { try write(segment(txid: txid, ms: startMs + txid)) }
        try write(snapshot(txid: segments, ms: startMs + segments + 1))
        try write(segment(txid: segments + 1, ms: startMs + segments + 10_000))
    }
}
