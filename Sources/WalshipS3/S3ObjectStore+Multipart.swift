import Foundation
import WalshipCore

extension S3ObjectStore {
    /// The fixed part size for an object of `size` bytes (DESIGN.md section 8): at least the
    /// configured part size, 5 MiB (S3's minimum) and `size / 9,000` (so no upload needs more than
    /// 10,000 parts), rounded up to a whole MiB. Every part but the last has exactly this size
    /// (R2 requires equal parts).
    static func partSize(objectSize size: Int64, configured: Int64) -> Int64 {
        let mebibyte: Int64 = 1 << 20
        let minimum = max(configured, 5 * mebibyte, (size + 8_999) / 9_000)
        return (minimum + mebibyte - 1) / mebibyte * mebibyte
    }

    /// Uploads a large body in parts, `uploadConcurrency` at a time. Each part is read from the
    /// file (or sliced from memory) as it is sent and carries its own SHA-256 and Content-MD5.
    /// Any failure aborts the upload so no parts are left behind.
    func multipartUpload(
        _ key: String, body: ObjectBody, size: Int64, ifNoneMatch: Bool, uploadLog: (any MultipartUploadLog)? = nil
    ) async throws {
        let partSize = Self.partSize(objectSize: size, configured: configuration.partSize)
        let partCount = Int((size + partSize - 1) / partSize)
        // Conditional writes of multipart uploads are checked at completion.
        let conditional = ifNoneMatch && configuration.conditionalPut
        let created = try await send(
            describe("CreateMultipartUpload", key), method: "POST", key: key, query: [("uploads", "")],
            body: .bytes([]), digest: PayloadDigest.of([UInt8]()))
        let uploadID = try S3Messages.parseUploadID(created.body, key: key)
        do {
            try uploadLog?.started(key: key, uploadID: uploadID)
            let etags = try await uploadParts(
                key, body: body, size: size, partSize: partSize, partCount: partCount, uploadID: uploadID)
            try await completeMultipartUpload(
                key, uploadID: uploadID, etags: etags, size: size, conditional: conditional)
            uploadLog?.finished(uploadID: uploadID)
        } catch {
            do {
                try await abortMultipartUpload(key: key, uploadID: uploadID)
                uploadLog?.finished(uploadID: uploadID)
            } catch let abortError {
                logger.warning(
                    "abort of a failed multipart upload failed; a lifecycle rule for incomplete uploads cleans it up",
                    metadata: ["object.key": "\(key)", "error": "\(abortError)"])
            }
            throw error
        }
    }

    /// Aborts an upload (DELETE with its upload id); one that is gone already is not an error.
    public func abortMultipartUpload(key: String, uploadID: String) async throws {
        _ = try await send(
            describe("AbortMultipartUpload", key), method: "DELETE", key: key, query: [("uploadId", uploadID)],
            acceptStatus: { (200..<300).contains($0) || $0 == 404 })
    }

    private func uploadParts(
        _ key: String, body: ObjectBody, size: Int64, partSize: Int64, partCount: Int, uploadID: String
    ) async throws -> [String] {
        var etags = [String](repeating: "", count: partCount)
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var next = 0
            func addPart() {
                let index = next
                next += 1
                group.addTask {
                    let offset = Int64(index) * partSize
                    let length = min(partSize, size - offset)
                    let etag = try await self.uploadPart(
                        key, body: body, offset: offset, length: length, number: index + 1, uploadID: uploadID)
                    return (index, etag)
                }
            }
            for _ in 0..<min(max(1, configuration.uploadConcurrency), partCount) { addPart() }
            while let (index, etag) = try await group.next() {
                etags[index] = etag
                if next < partCount { addPart() }
            }
        }
        return etags
    }

    private func uploadPart(
        _ key: String, body: ObjectBody, offset: Int64, length: Int64, number: Int, uploadID: String
    ) async throws -> String {
        let httpBody: HTTPRequestBody
        let digest: PayloadDigest
        switch body {
        case .bytes(let bytes):
            let slice = Array(bytes[Int(offset)..<Int(offset + length)])
            httpBody = .bytes(slice)
            digest = PayloadDigest.of(slice)
        case .file(let path):
            httpBody = .file(path: path, offset: offset, length: length)
            digest = try await Blocking.run { try PayloadDigest.of(file: path, offset: offset, length: length) }
        }
        let response = try await send(
            describe("UploadPart \(number)", key), method: "PUT", key: key,
            query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: [("content-md5", digest.md5Base64)], body: httpBody, digest: digest)
        guard let etag = response.headers["etag"], !etag.isEmpty else {
            throw WalshipError(.storeProtocol, "\(describe("UploadPart \(number)", key)) returned no ETag")
        }
        return Self.unquote(etag)
    }

    /// Completes the upload. A 200 whose body is an `<Error>` is a failure (retried when
    /// transient); after `NoSuchUpload` on a retry, an earlier attempt may have completed it, so
    /// the object is checked with HEAD (by size, never by comparing an ETag with an MD5).
    private func completeMultipartUpload(
        _ key: String, uploadID: String, etags: [String], size: Int64, conditional: Bool
    ) async throws {
        let body = Array(S3Messages.completeBody(etags: etags).utf8)
        let digest = PayloadDigest.of(body)
        var headers: [(name: String, value: String)] = [("content-type", "application/xml")]
        if conditional { headers.append(("if-none-match", "*")) }
        let operation = describe("CompleteMultipartUpload", key)
        let attempts = AttemptCounter()
        do {
            _ = try await send(
                operation, method: "POST", key: key, query: [("uploadId", uploadID)], headers: headers,
                body: .bytes(body), digest: digest,
                validate: { response in
                    if let error = S3Messages.completeError(response.body) {
                        throw error.walshipError(operation: operation, accessKeyID: nil, serverDate: nil)
                    }
                }, attempts: attempts)
        } catch let error as WalshipError
            where attempts.value > 1 && (error.cause as? S3ErrorResponse)?.code == "NoSuchUpload"
        {
            let info = try await head(key)
            guard info.size == size else { throw error }
        }
    }
}
