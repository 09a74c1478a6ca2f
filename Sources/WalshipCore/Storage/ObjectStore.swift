import Foundation

/// One stored object as a listing or a HEAD request describes it.
public struct ObjectInfo: Sendable, Equatable {
    /// The key relative to the store's root (an S3 bucket, or a local directory).
    public var key: String
    public var size: Int64
    public var lastModified: Date?
    /// The store's entity tag, unquoted. Opaque: never compared with an MD5 (multipart and
    /// SSE-KMS ETags are not MD5s).
    public var etag: String?

    public init(key: String, size: Int64, lastModified: Date? = nil, etag: String? = nil) {
        self.key = key
        self.size = size
        self.lastModified = lastModified
        self.etag = etag
    }
}

/// The bytes of an object to upload: in memory, or a whole local file (streamed, never loaded).
public enum ObjectBody: Sendable {
    case bytes([UInt8])
    case file(path: String)

    /// The body's length in bytes.
    public func size() throws -> Int64 {
        switch self {
        case .bytes(let bytes): return Int64(bytes.count)
        case .file(let path):
            guard let size = FileSystem.size(path) else {
                throw WalshipError(.localIO, "read upload body '\(path)': the file does not exist")
            }
            return size
        }
    }
}

/// One page of a listing.
public struct ObjectListPage: Sendable {
    public var objects: [ObjectInfo]
    /// Pass to the next `listPage` call; nil on the last page.
    public var continuationToken: String?

    public init(objects: [ObjectInfo], continuationToken: String?) {
        self.objects = objects
        self.continuationToken = continuationToken
    }
}

/// A key that a batch delete could not delete, with the store's reason.
public struct DeleteFailure: Sendable, Equatable {
    public var key: String
    public var code: String
    public var message: String

    public init(key: String, code: String, message: String) {
        self.key = key
        self.code = code
        self.message = message
    }
}

/// Where walship keeps objects: an S3 bucket (`S3ObjectStore`) or a local directory
/// (`FileObjectStore`). Both give the same semantics and error codes:
///
/// - Keys are `/`-separated paths relative to the store's root; listings are in UTF-8 byte
///   order of the key, like S3.
/// - A PUT is atomic: readers see the old state or the whole new object, never a part.
/// - A missing object is `WalshipError.Code.objectNotFound`, a missing bucket or root
///   `bucketNotFound`, refused credentials `accessDenied`, a lost conditional write
///   `objectExists`, and an unreachable or failing store `storeUnavailable` (after retries).
/// - Deleting a key that does not exist succeeds (as in S3).
public protocol ObjectStore: Sendable {
    /// Where the store points, for logs and messages: `s3://bucket` or `file:///dir`. No secrets.
    var location: String { get }

    /// Where the objects really are, one spelling per place (an S3 bucket with its endpoint, a
    /// directory with symbolic links resolved): two agents whose stores have the same identity
    /// write into one place. Defaults to `location`.
    var identity: String { get }

    /// Whether deleted objects leave old versions that still cost storage (a versioned S3
    /// bucket); nil when unknown (no permission to ask, or a store without versions).
    func keepsOldVersions() async -> Bool?

    /// Writes an object. With `ifNoneMatch`, fails with `objectExists` when the key exists
    /// (where the store supports conditional writes; `supportsConditionalPut` says whether).
    func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool) async throws

    /// Reads a whole object, or the byte range `range` of it, into memory. For small objects.
    func get(_ key: String, range: Range<Int64>?) async throws -> [UInt8]

    /// Streams a whole object into a new local file at `path`; returns its size. Memory stays
    /// bounded whatever the size.
    func download(_ key: String, to path: String) async throws -> Int64

    /// Describes one object.
    func head(_ key: String) async throws -> ObjectInfo

    /// Deletes one object; a missing key is not an error.
    func delete(_ key: String) async throws

    /// Deletes many objects (in batches the store accepts); returns the keys it could not delete.
    func delete(_ keys: [String]) async throws -> [DeleteFailure]

    /// Lists up to `maxKeys` objects whose keys start with `prefix` and sort after `startAfter`.
    func listPage(
        prefix: String, startAfter: String?, continuationToken: String?, maxKeys: Int
    ) async throws
        -> ObjectListPage

    /// Whether `put(ifNoneMatch: true)` is enforced by the store.
    var supportsConditionalPut: Bool { get }

    /// `put`, recording in `uploadLog` each multipart upload it starts until it is completed or
    /// aborted (a store without multipart uploads records nothing).
    func put(_ key: String, body: ObjectBody, ifNoneMatch: Bool, uploadLog: (any MultipartUploadLog)?) async throws

    /// Aborts a multipart upload that a killed process left unfinished (recorded in its upload
    /// log); an upload that no longer exists is not an error.
    func abortMultipartUpload(key: String, uploadID: String) async throws
}

/// Where a store records the multipart uploads it starts, so that one left unfinished by a
/// process killed mid-upload is aborted at the next start (its parts cost storage until then).
/// Only the uploads recorded here are ever aborted, never others under the same prefix.
public protocol MultipartUploadLog: Sendable {
    /// Called after the upload is created, before any part is sent.
    func started(key: String, uploadID: String) throws
    /// Called once the upload is completed or aborted.
    func finished(uploadID: String)
}

extension ObjectStore {
    public var identity: String { location }

    public func keepsOldVersions() async -> Bool? { nil }

    public func put(_ key: String, body: ObjectBody) async throws {
        try await put(key, body: body, ifNoneMatch: false)
    }

    public func put(
        _ key: String, body: ObjectBody, ifNoneMatch: Bool, uploadLog: (any MultipartUploadLog)?
    ) async throws {
        try await put(key, body: body, ifNoneMatch: ifNoneMatch)
    }

    public func abortMultipartUpload(key: String, uploadID: String) async throws {}

    public func get(_ key: String) async throws -> [UInt8] {
        try await get(key, range: nil)
    }

    /// Lists every object under `prefix`, following continuation tokens.
    public func list(prefix: String, startAfter: String? = nil) async throws -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            let page = try await listPage(
                prefix: prefix, startAfter: startAfter, continuationToken: token, maxKeys: 1000)
            objects.append(contentsOf: page.objects)
            token = page.continuationToken
        } while token != nil
        return objects
    }

    /// Whether an object exists.
    public func exists(_ key: String) async throws -> Bool {
        do {
            _ = try await head(key)
            return true
        } catch let error as WalshipError where error.code == .objectNotFound {
            return false
        }
    }
}
