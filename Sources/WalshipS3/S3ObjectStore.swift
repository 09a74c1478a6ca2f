import Foundation
import Logging
import Synchronization
import WalshipCore

/// The `ObjectStore` for S3 and S3-compatible services, speaking plain, fully signed requests
/// (DESIGN.md section 8): SigV4 header signing with the payload's SHA-256 in
/// `x-amz-content-sha256`, `Content-MD5` on every PUT and DeleteObjects, no `aws-chunked`
/// encoding and no trailers; multipart above `partSize`; retries with backoff and jitter on
/// transient failures, signing each attempt anew.
public final class S3ObjectStore: ObjectStore {
    public let configuration: S3Configuration
    let addressing: S3Addressing
    let credentials: any CredentialsProvider
    let transport: any HTTPTransport
    let logger: Logger

    public init(
        configuration: S3Configuration, credentials: any CredentialsProvider, transport: (any HTTPTransport)? = nil,
        logger: Logger = Logger(label: "walship.s3")
    ) throws {
        self.configuration = configuration
        self.addressing = try S3Addressing(configuration: configuration)
        self.credentials = credentials
        self.transport = transport ?? CurlTransport(options: configuration.transport)
        self.logger = logger
    }

    public var location: String { "s3://\(configuration.bucket)" }
    public var identity: String {
        "s3://\(configuration.bucket) at \(S3Configuration.normalizedEndpoint(configuration.endpoint))"
    }
    public var supportsConditionalPut: Bool { configuration.conditionalPut }

    // MARK: Sending

    /// One logical request, retried on transient failures; each attempt is signed anew.
    func send(
        _ operation: @autoclosure () -> String, method: String, key: String?,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: HTTPRequestBody = .none,
        digest: PayloadDigest? = nil, sink: HTTPResponseSink = .memory(limit: 16 << 20),
        acceptStatus: (Int) -> Bool = { (200..<300).contains($0) },
        validate: (HTTPResponse) throws -> Void = { _ in },
        attempts: AttemptCounter? = nil
    ) async throws -> HTTPResponse {
        let operationText = operation()
        return try await configuration.retry.run { attempt in
            attempts?.increment()
            let started = ContinuousClock.now
            let current = try await credentials.credentials()
            let request = sign(
                method: method, key: key, query: query, headers: headers, body: body,
                payloadHash: digest?.sha256Hex ?? PayloadDigest.emptySHA256, credentials: current)
            let response = try await transport.send(request, sink: sink)
            logger.debug(
                "object store request",
                metadata: [
                    "http.method": "\(method)", "object.key": "\(key ?? "")", "http.status": "\(response.status)",
                    "attempt": "\(attempt)", "duration_ms": "\((ContinuousClock.now - started).milliseconds)",
                ])
            if acceptStatus(response.status) {
                try validate(response)
                return response
            }
            let error = S3ErrorResponse.parse(status: response.status, body: response.body, headers: response.headers)
            throw error.walshipError(
                operation: operationText, accessKeyID: current.accessKeyID,
                serverDate: S3ErrorResponse.parseHTTPDate(response.headers["date"]))
        } onRetry: { attempt, error, delay in
            logger.warning(
                "object store request failed, retrying",
                metadata: [
                    "operation": "\(operationText)", "attempt": "\(attempt)", "error": "\(error)",
                    "retry.delay_ms": "\(delay.milliseconds)",
                ])
        }
    }

    /// Builds and signs a request.
    func sign(
        method: String, key: String?, query: [(name: String, value: String)], headers: [(name: String, value: String)],
        body: HTTPRequestBody, payloadHash: String, credentials: AWSCredentials
    ) -> HTTPRequest {
        var signedHeaders = headers
        signedHeaders.append(("host", addressing.host))
        let signer = SigV4Signer(
            credentials: credentials, region: configuration.region, service: "s3", normalizePath: false,
            signedBodyHeader: true)
        let added = signer.sign(
            SigV4Request(method: method, path: addressing.path(key: key), query: query, headers: signedHeaders),
            payloadHash: payloadHash, date: Date())
        return HTTPRequest(
            method: method, url: addressing.url(key: key, query: query), headers: signedHeaders + added, body: body)
    }

    func describe(_ verb: String, _ key: String?) -> String {
        if let key { return "\(verb) object '\(key)' in bucket '\(configuration.bucket)'" }
        return "\(verb) bucket '\(configuration.bucket)'"
    }

    // MARK: ObjectStore

    public func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool) async throws {
        try await put(key, body: body, ifNoneMatch: ifNoneMatch, uploadLog: nil)
    }

    public func put(
        _ key: String, body: ObjectBody, ifNoneMatch: Bool, uploadLog: (any MultipartUploadLog)?
    ) async throws {
        let size = try body.size()
        if size > configuration.partSize {
            try await multipartUpload(key, body: body, size: size, ifNoneMatch: ifNoneMatch, uploadLog: uploadLog)
            return
        }
        let httpBody: HTTPRequestBody
        let digest: PayloadDigest
        switch body {
        case .bytes(let bytes):
            httpBody = .bytes(bytes)
            digest = PayloadDigest.of(bytes)
        case .file(let path):
            httpBody = .file(path: path, offset: 0, length: size)
            digest = try await Blocking.run { try PayloadDigest.of(file: path, offset: 0, length: size) }
        }
        var headers: [(name: String, value: String)] = [("content-md5", digest.md5Base64)]
        if ifNoneMatch && configuration.conditionalPut { headers.append(("if-none-match", "*")) }
        _ = try await send(
            describe("PUT", key), method: "PUT", key: key, headers: headers, body: httpBody, digest: digest)
    }

    public func get(_ key: String, range: Range<Int64>?) async throws -> [UInt8] {
        var headers: [(name: String, value: String)] = []
        if let range {
            if range.isEmpty { return [] }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let response = try await send(
            describe("GET", key), method: "GET", key: key, headers: headers, sink: .memory(limit: 512 << 20))
        return response.body
    }

    public func download(_ key: String, to path: String) async throws -> Int64 {
        if FileSystem.exists(path) {
            throw WalshipError(.outputExists, "download of '\(key)': '\(path)' already exists")
        }
        let response = try await send(describe("GET", key), method: "GET", key: key, sink: .file(path: path))
        if let length = response.headers["content-length"].flatMap(Int64.init), length != response.bodyBytes {
            try? FileSystem.removeIfPresent(path)
            throw WalshipError(
                .storeUnavailable, "\(describe("GET", key)) returned \(response.bodyBytes) of \(length) bytes",
                isTransient: true)
        }
        return response.bodyBytes
    }

    public func head(_ key: String) async throws -> ObjectInfo {
        let response = try await send(describe("HEAD", key), method: "HEAD", key: key)
        return ObjectInfo(
            key: key, size: response.headers["content-length"].flatMap(Int64.init) ?? 0,
            lastModified: S3ErrorResponse.parseHTTPDate(response.headers["last-modified"]),
            etag: response.headers["etag"].map(Self.unquote))
    }

    public func delete(_ key: String) async throws {
        _ = try await send(
            describe("DELETE", key), method: "DELETE", key: key, acceptStatus: { (200..<300).contains($0) || $0 == 404 }
        )
    }

    public func keepsOldVersions() async -> Bool? {
        guard
            let response = try? await send(
                "GetBucketVersioning of bucket '\(configuration.bucket)'", method: "GET", key: nil,
                query: [("versioning", "")])
        else { return nil }
        return S3Messages.parseVersioning(response.body)
    }

    public func delete(_ keys: [String]) async throws -> [DeleteFailure] {
        var failures: [DeleteFailure] = []
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(start + 1000, keys.count)])
            start += batch.count
            let body = Array(S3Messages.deleteObjectsBody(batch).utf8)
            let digest = PayloadDigest.of(body)
            let response = try await send(
                "DeleteObjects of \(batch.count) keys in bucket '\(configuration.bucket)'", method: "POST", key: nil,
                query: [("delete", "")],
                headers: [("content-md5", digest.md5Base64), ("content-type", "application/xml")],
                body: .bytes(body), digest: digest)
            failures += try S3Messages.parseDeleteResult(response.body, bucket: configuration.bucket)
        }
        return failures
    }

    public func listPage(
        prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int
    ) async throws
        -> ObjectListPage
    {
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("prefix", prefix), ("max-keys", String(max(1, min(maxKeys, 1000)))),
        ]
        if let startAfter { query.append(("start-after", startAfter)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let response = try await send(
            "LIST prefix '\(prefix)' in bucket '\(configuration.bucket)'", method: "GET", key: nil, query: query)
        return try S3Messages.parseListResult(response.body, bucket: configuration.bucket)
    }

    /// Counts the attempts `send` made for one logical request.
    final class AttemptCounter: Sendable {
        private let count = Atomic<Int>(0)
        func increment() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    static func unquote(_ etag: String) -> String {
        etag.count >= 2 && etag.hasPrefix("\"") && etag.hasSuffix("\"") ? String(etag.dropFirst().dropLast()) : etag
    }
}
