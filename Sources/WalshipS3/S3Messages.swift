import Foundation
import WalshipCore

/// The XML documents walship sends to and reads from S3 (pure: bytes in, values out).
enum S3Messages {
    /// Escapes text for an XML element.
    static func escape(_ text: String) -> String { Markup.escape(text) }

    /// A quiet `DeleteObjects` request: only failures come back.
    static func deleteObjectsBody(_ keys: [String]) -> String {
        var body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        for key in keys { body += "<Object><Key>\(escape(key))</Key></Object>" }
        return body + "</Delete>"
    }

    /// The per-key errors of a `DeleteResult`.
    static func parseDeleteResult(_ body: [UInt8], bucket: String) throws -> [DeleteFailure] {
        guard let root = S3XMLElement.parse(body) else {
            throw WalshipError(
                .storeProtocol, "DeleteObjects in bucket '\(bucket)' returned a response that is not XML")
        }
        if root.name == "Error" {
            let error = S3ErrorResponse(
                status: 200, code: root.text(of: "Code") ?? "", message: root.text(of: "Message") ?? "", requestID: nil)
            throw error.walshipError(
                operation: "DeleteObjects in bucket '\(bucket)'", accessKeyID: nil, serverDate: nil)
        }
        return root.children("Error").map {
            DeleteFailure(
                key: $0.text(of: "Key") ?? "", code: $0.text(of: "Code") ?? "", message: $0.text(of: "Message") ?? "")
        }
    }

    /// A `GetBucketVersioning` answer: whether the bucket keeps old versions of objects
    /// (`Enabled`, or `Suspended`, which keeps the versions made before); nil when the answer
    /// is not one.
    static func parseVersioning(_ body: [UInt8]) -> Bool? {
        guard let root = S3XMLElement.parse(body), root.name == "VersioningConfiguration" else { return nil }
        switch root.text(of: "Status") {
        case "Enabled", "Suspended": return true
        default: return false
        }
    }

    /// One `ListObjectsV2` page.
    static func parseListResult(_ body: [UInt8], bucket: String) throws -> ObjectListPage {
        guard let root = S3XMLElement.parse(body), root.name != "Error" else {
            throw WalshipError(
                .storeProtocol, "LIST in bucket '\(bucket)' returned a response that is not a ListBucketResult")
        }
        var objects: [ObjectInfo] = []
        for content in root.children("Contents") {
            guard let key = content.text(of: "Key") else { continue }
            objects.append(
                ObjectInfo(
                    key: key, size: content.text(of: "Size").flatMap(Int64.init) ?? 0,
                    lastModified: content.text(of: "LastModified").flatMap(ISO8601.parse),
                    etag: content.text(of: "ETag").map(S3ObjectStore.unquote)))
        }
        let truncated = root.text(of: "IsTruncated")?.lowercased() == "true"
        var token = root.text(of: "NextContinuationToken")
        if token?.isEmpty == true { token = nil }
        if truncated && token == nil {
            throw WalshipError(.storeProtocol, "LIST in bucket '\(bucket)' is truncated but has no continuation token")
        }
        return ObjectListPage(objects: objects, continuationToken: truncated ? token : nil)
    }

    /// The `UploadId` of an `InitiateMultipartUploadResult` (rclone names the root
    /// `InitiateMultipartUpload`, so only the child is required).
    static func parseUploadID(_ body: [UInt8], key: String) throws -> String {
        guard let root = S3XMLElement.parse(body), root.name != "Error",
            let uploadID = root.text(of: "UploadId"), !uploadID.isEmpty
        else {
            throw WalshipError(.storeProtocol, "CreateMultipartUpload for '\(key)' returned no UploadId")
        }
        return uploadID
    }

    /// A `CompleteMultipartUpload` request listing every part in order.
    static func completeBody(etags: [String]) -> String {
        var body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for (index, etag) in etags.enumerated() {
            body += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(escape("\"\(etag)\""))</ETag></Part>"
        }
        return body + "</CompleteMultipartUpload>"
    }

    /// A CompleteMultipartUpload answer: a 200 whose body is an `<Error>` is a failure.
    static func completeError(_ body: [UInt8]) -> S3ErrorResponse? {
        guard let root = S3XMLElement.parse(body) else {
            return body.isEmpty
                ? nil
                : S3ErrorResponse(status: 200, code: "InternalError", message: "unreadable response", requestID: nil)
        }
        guard root.name == "Error" else { return nil }
        return S3ErrorResponse(
            status: 200, code: root.text(of: "Code") ?? "", message: root.text(of: "Message") ?? "",
            requestID: root.text(of: "RequestId"))
    }
}
