import ArgumentParser
import WalshipCore
import WalshipS3

/// `walship version`: walship's version and the versions of the libraries it is linked with.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print walship's version and the SQLite, zlib, zstd and curl versions it uses."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let logger = try global.bootstrapLogging()
        print("walship \(WalshipVersion.current)")
        print("sqlite \(SQLiteLibrary.version)")
        print("zlib \(CompressionLibraries.zlibVersion)")
        print("zstd \(CompressionLibraries.zstdVersion)")
        print("curl \(CurlLibrary.version)")
        if let warning = SQLiteLibrary.walResetBugWarning {
            logger.warning("\(warning)")
        }
    }
}
