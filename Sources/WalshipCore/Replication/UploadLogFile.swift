import Foundation
import Logging
import Synchronization

/// The multipart uploads this replica's agent has started and not yet completed or aborted, in
/// `<state-dir>/<db>/uploads.json` (written atomically at each change). An agent killed during a
/// large upload (a snapshot) leaves its upload incomplete in the bucket, where its parts cost
/// storage; the next start aborts exactly the uploads recorded here (`abortLeftovers`), never
/// other uploads under the prefix.
final class UploadLogFile: MultipartUploadLog {
    struct Upload: Codable, Equatable {
        var key: String
        var uploadID: String
    }

    let path: String
    private let uploads: Mutex<[Upload]>

    init(path: String) {
        self.path = path
        let stored = (try? FileSystem.contents(of: path)).flatMap { $0 }.flatMap {
            try? JSONDecoder().decode([Upload].self, from: Data($0))
        }
        uploads = Mutex(stored ?? [])
    }

    var recorded: [Upload] { uploads.withLock { $0 } }

    func started(key: String, uploadID: String) throws {
        let list = uploads.withLock { list -> [Upload] in
            list.append(Upload(key: key, uploadID: uploadID))
            return list
        }
        try save(list)
    }

    func finished(uploadID: String) {
        let list = uploads.withLock { list -> [Upload] in
            list.removeAll { $0.uploadID == uploadID }
            return list
        }
        try? save(list)
    }

    private func save(_ list: [Upload]) throws {
        if list.isEmpty {
            try FileSystem.removeIfPresent(path)
        } else {
            try FileSystem.writeAtomically(Array(try JSONEncoder().encode(list)), to: path, mode: 0o600)
        }
    }

    /// Aborts every recorded upload (a previous run was killed during it); returns how many were
    /// aborted. An abort that fails is kept for the next start.
    func abortLeftovers(in store: any ObjectStore, logger: Logger) async -> Int {
        var aborted = 0
        for upload in recorded {
            do {
                try await store.abortMultipartUpload(key: upload.key, uploadID: upload.uploadID)
                finished(uploadID: upload.uploadID)
                aborted += 1
                logger.info(
                    "aborted a multipart upload a previous run left incomplete",
                    metadata: ["object.key": "\(upload.key)", "upload.id": "\(upload.uploadID)"])
            } catch {
                logger.warning(
                    "could not abort a multipart upload a previous run left incomplete; trying again at the next start",
                    metadata: ["object.key": "\(upload.key)", "error": "\(error)"])
            }
        }
        return aborted
    }
}
