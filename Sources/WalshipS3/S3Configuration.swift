import Foundation
import WalshipCore

/// Everything an `S3ObjectStore` needs besides credentials: where the bucket is, how to address
/// it, and how to upload.
public struct S3Configuration: Sendable {
    public var bucket: String
    /// A custom endpoint such as `http://127.0.0.1:9000` (MinIO, rclone, R2, B2...); nil means
    /// AWS itself, `https://s3.<region>.amazonaws.com`.
    public var endpoint: String?
    public var region: String
    /// Path-style (`endpoint/bucket/key`) or virtual-hosted (`bucket.endpoint/key`) requests;
    /// nil picks path-style for every endpoint except `*.amazonaws.com`.
    public var pathStyle: Bool?
    /// Objects larger than this go up as multipart uploads with parts of at least this size.
    public var partSize: Int64 = 16 << 20
    /// Parts of one multipart upload in flight at once.
    public var uploadConcurrency = 4
    /// Send `If-None-Match: *` on conditional writes.
    public var conditionalPut = true
    public var retry = RetryPolicy()
    public var transport = CurlTransport.Options()

    public init(bucket: String, endpoint: String? = nil, region: String = "us-east-1", pathStyle: Bool? = nil) {
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
    }

    /// One spelling of an endpoint: scheme and host in lower case, no default port, no trailing
    /// slash; "AWS" for none (the region picks the AWS endpoint).
    public static func normalizedEndpoint(_ endpoint: String?) -> String {
        guard let endpoint, var components = URLComponents(string: endpoint), components.host != nil else {
            return endpoint ?? "AWS"
        }
        components.scheme = components.scheme?.lowercased()
        components.host = components.host?.lowercased()
        if (components.scheme == "http" && components.port == 80)
            || (components.scheme == "https" && components.port == 443)
        {
            components.port = nil
        }
        while components.path.hasSuffix("/") { components.path.removeLast() }
        return components.string ?? endpoint
    }
}
