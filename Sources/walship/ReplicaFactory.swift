import Foundation
import Logging
import WalshipCore
import WalshipS3

/// Turns a replica URL into a `Replica`, reading the environment for the S3 endpoint, region
/// and credentials (only the executable reads the environment):
///
/// - `file:///absolute/dir`: a local directory (created if missing when `create`).
/// - `s3://bucket/prefix`: S3 or an S3-compatible store; `AWS_ENDPOINT_URL`, `AWS_REGION` (or
///   `AWS_DEFAULT_REGION`) and the usual credential sources, overridable with the URL query
///   parameters `endpoint`, `region` and `path-style`.
enum ReplicaFactory {
    static func replica(url text: String, create: Bool, logger: Logger) throws -> Replica {
        let environment = ProcessInfo.processInfo.environment
        if text.hasPrefix("file://") {
            let path = String(text.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw WalshipError(.usage, "invalid replica URL '\(text)': use file:///absolute/path")
            }
            let store = try FileObjectStore(root: path, create: create)
            return Replica(store: store, layout: ReplicaLayout(prefix: ""))
        }
        guard text.hasPrefix("s3://"), let components = URLComponents(string: text), let bucket = components.host,
            !bucket.isEmpty
        else {
            throw WalshipError(.usage, "invalid replica URL '\(text)': use s3://bucket/prefix or file:///dir")
        }
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["endpoint", "region", "path-style"].contains(item.name) else {
                throw WalshipError(.usage, "unknown parameter '\(item.name)' in replica URL '\(text)'")
            }
            parameters[item.name] = item.value ?? ""
        }
        let region =
            parameters["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var configuration = S3Configuration(
            bucket: bucket,
            endpoint: parameters["endpoint"] ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"],
            region: region)
        if let pathStyle = parameters["path-style"] {
            guard let value = Bool(pathStyle) else {
                throw WalshipError(.usage, "invalid path-style '\(pathStyle)' in replica URL: use true or false")
            }
            configuration.pathStyle = value
        }
        configuration.transport.caBundle = environment["AWS_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"]
        let transport = CurlTransport(options: configuration.transport)
        let credentials = try CredentialsResolver.provider(
            explicit: nil, profile: nil, region: region, environment: environment,
            homeDirectory: environment["HOME"], transport: transport)
        let store = try S3ObjectStore(
            configuration: configuration, credentials: credentials, transport: transport,
            logger: Logger(label: "walship.s3"))
        return Replica(store: store, layout: ReplicaLayout(prefix: components.path))
    }

    /// `--state-dir`, else `$XDG_STATE_HOME/walship`, else `~/.local/state/walship`; one
    /// subdirectory per database, named after the file and a hash of its absolute path.
    static func stateDirectory(option: String?, databasePath: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base =
            option ?? environment["XDG_STATE_HOME"].map { "\($0)/walship" }
            ?? "\(environment["HOME"] ?? "/tmp")/.local/state/walship"
        let absolute = FileSystem.absolute(databasePath)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in absolute.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(FileSystem.absolute(base))/\(FileSystem.fileName(of: absolute))-\(String(hash, radix: 16).prefix(8))"
    }
}
