// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ffmeasure",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/swhitty/FlyingFox.git", exact: "0.27.1"),
    ],
    targets: [
        .executableTarget(name: "idle"),
        .executableTarget(name: "baseline"),
        .executableTarget(name: "baseline_net"),
        .executableTarget(name: "baseline_curl", linkerSettings: [.linkedLibrary("curl")]),
        .executableTarget(name: "baseline_async", linkerSettings: [.linkedLibrary("curl")]),
        .executableTarget(
            name: "flyingfox",
            dependencies: [.product(name: "FlyingFox", package: "FlyingFox")]
        ),
    ]
)
