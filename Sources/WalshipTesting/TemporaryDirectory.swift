import Foundation
import WalshipCore

/// A fresh directory under the system temporary directory, removed with everything in it by
/// `remove()` (tests call it in `defer`).
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "walship-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        let name = "\(prefix)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        path = base.hasSuffix("/") ? base + name : base + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory.
    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
