import Foundation
import WalshipCore

/// A small file system of its own (tmpfs, mounted as root), so tests can fill it.
public final class SmallFileSystem {
    public let path: String

    public init(path: String, size: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mounted = try CommandRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        guard mounted.status == 0 else {
            throw WalshipError(
                .internal, "mounting a tmpfs at '\(path)' failed (the tests run as root): \(mounted.stderr)")
        }
    }

    /// Changes its size (a full disk that an operator cleans up).
    public func resize(_ size: String) throws {
        let output = try CommandRunner.run("/bin/mount", ["-o", "remount,size=\(size)", path])
        guard output.status == 0 else { throw WalshipError(.internal, "remount failed: \(output.stderr)") }
    }

    public func unmount() {
        _ = try? CommandRunner.run("/bin/umount", ["-l", path])
    }
}
