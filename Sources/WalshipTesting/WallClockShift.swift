import Foundation
import WalshipCore

/// A step of one process's wall clock, for tests of what walship does when the clock jumps:
/// `scripts/testing/wallclock_shift.c`, built with gcc into a temporary library and preloaded
/// into the agent, shifts `CLOCK_REALTIME` by the offset in a file the test rewrites, and leaves
/// the monotonic clocks alone.
public final class WallClockShift: Sendable {
    public let library: String
    public let offsetFile: String

    public init(directory: TemporaryDirectory) throws {
        library = directory.file("libwallclock_shift.so")
        offsetFile = directory.file("clock-offset")
        let gcc = CommandRunner.which("gcc") ?? "/usr/bin/gcc"
        let built = try CommandRunner.run(
            gcc, ["-shared", "-fPIC", "-O2", TestScripts.path("wallclock_shift.c"), "-o", library, "-ldl"])
        guard built.status == 0 else {
            throw WalshipError(.internal, "building wallclock_shift.c failed: \(built.stderr)")
        }
        try set(milliseconds: 0)
    }

    /// The environment that shifts a process's wall clock.
    public var environment: [String: String] {
        ["LD_PRELOAD": library, "WALSHIP_TEST_CLOCK_OFFSET_FILE": offsetFile]
    }

    /// Sets the offset from the real wall clock (negative: behind).
    public func set(milliseconds: Int64) throws {
        try "\(milliseconds)\n".write(toFile: offsetFile + ".tmp", atomically: false, encoding: .utf8)
        _ = rename(offsetFile + ".tmp", offsetFile)
    }
}
