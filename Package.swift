// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "walship",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "walship", targets: ["walship"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        .target(
            name: "WalshipCore",
            dependencies: [
                "CSQLite", "CZlib", "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WalshipS3",
            dependencies: [
                "WalshipCore", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WalshipTesting",
            dependencies: [
                "WalshipCore", "WalshipS3", "CSQLite", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "walship",
            dependencies: [
                "WalshipCore", "WalshipS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "walship-torture",
            dependencies: [
                "WalshipCore", "WalshipS3", "WalshipTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "walship-bench",
            dependencies: ["WalshipCore", "WalshipS3", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "WalshipCoreTests",
            dependencies: ["WalshipCore", "WalshipTesting", "CSQLite"],
            exclude: ["Storage/Golden"]
        ),
        .testTarget(
            name: "WalshipS3Tests",
            dependencies: ["WalshipS3", "WalshipCore", "WalshipTesting"],
            exclude: ["Scripts"],
            resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "walshipTests",
            dependencies: ["walship", "WalshipCore", "WalshipTesting", "CSQLite"],
            exclude: ["Scripts", "Fixtures"]
        ),
    ]
)

// Shared settings for every target we compile ourselves (the C targets take none).
for target in package.targets where target.type != .system && target.name != "CCurl" {
    var settings = target.swiftSettings ?? []
    settings.append(.swiftLanguageMode(.v6))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
