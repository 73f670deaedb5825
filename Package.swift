// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "hosttwin",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hosttwin", targets: ["hosttwin"]),
        .library(name: "TwinCore", targets: ["TwinCore"]),
        .library(name: "TwinCollectors", targets: ["TwinCollectors"]),
        .library(name: "TwinStorage", targets: ["TwinStorage"]),
        .library(name: "TwinQuery", targets: ["TwinQuery"]),
        .library(name: "TwinAnalytics", targets: ["TwinAnalytics"]),
        .library(name: "TwinDashboard", targets: ["TwinDashboard"]),
        .library(name: "TwinSecurity", targets: ["TwinSecurity"]),
        .library(name: "TwinServer", targets: ["TwinServer"]),
        .library(name: "TwinRuntime", targets: ["TwinRuntime"]),
        .library(name: "TwinSync", targets: ["TwinSync"]),
        .library(name: "TwinRules", targets: ["TwinRules"]),
        .library(name: "TwinPostgres", targets: ["TwinPostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.20.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        .target(name: "TwinCore", swiftSettings: swiftSettings),
        // zlib (deflate for sealed chunks, CRC-32 for chunks and log records); Debian: zlib1g-dev.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // zstd (the sync protocol's batches); Debian: libzstd-dev.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // LZ4 frames (apt's package lists are often kept lz4-compressed); Debian: liblz4-dev.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // Snappy blocks (Prometheus remote_write bodies); Debian: libsnappy-dev.
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // adjtimex(2) for the timex collector (a glibc header the Glibc module leaves out).
        .systemLibrary(name: "CTimex"),
        // Constructors that run before main: one malloc arena for `run` and `agent`, fault-around off for the
        // program's code.
        .target(name: "CProcessTuning"),
        // perf_event_open(2) on the `sock:inet_sock_set_state` tracepoint (TCP changes between ticks).
        .systemLibrary(name: "CPerfEvent"),
        // fanotify(7) on whole filesystems and open_by_handle_at(2) (SUID files between scans).
        .systemLibrary(name: "CFanotify"),
        .target(
            name: "TwinCollectors",
            dependencies: ["TwinCore", "CTimex", "CPerfEvent", "CFanotify", "CLZ4", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TwinStorage",
            dependencies: ["TwinCore", "CZlib", "CZstd", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TwinQuery",
            dependencies: ["TwinCore", "TwinStorage", .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TwinAnalytics",
            dependencies: ["TwinCore", "TwinStorage", "TwinQuery", "CZlib"],
            swiftSettings: swiftSettings
        ),
        // Tokens and roles, the audit log, data classification and encryption at rest (swift-crypto).
        .target(
            name: "TwinSecurity",
            dependencies: ["TwinCore", "TwinStorage", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The browser dashboard: HTML, CSS and JavaScript compiled into the binary (no build step, no bundle).
        .target(
            name: "TwinDashboard",
            resources: [
                .embedInCode("Assets/index.html"), .embedInCode("Assets/app.css"),
                .embedInCode("Assets/app.js"), .embedInCode("Assets/chart.js"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TwinServer",
            dependencies: [
                "TwinCore", "TwinStorage", "TwinCollectors", "TwinQuery", "TwinAnalytics", "TwinDashboard", "TwinSecurity", "TwinRules", "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // A hub's store in PostgreSQL (`--store postgres://...`), through postgres-nio.
        .target(
            name: "TwinPostgres",
            dependencies: [
                "TwinCore", "TwinStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The fleet's sync protocol: positions, batches and their wire encoding (docs/format/sync.md); Prometheus
        // remote_write out and in (protobuf code generated from RemoteWrite/remote.proto and committed).
        .target(
            name: "TwinSync",
            dependencies: ["TwinCore", "TwinStorage", "CZstd", "CSnappy", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["RemoteWrite/remote.proto"],
            swiftSettings: swiftSettings
        ),
        // The long-running services `run`, `agent` and `serve` are made of: the collection loop and its sinks.
        .target(
            name: "TwinRuntime",
            dependencies: [
                "TwinCore", "TwinCollectors", "TwinStorage", "TwinQuery", "TwinSecurity", "TwinServer", "TwinSync", "TwinAnalytics", "TwinRules",
                "CProcessTuning",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Rules, alerts and their notifications: Prometheus rule files (YAML via Yams) with HostTwin's own
        // conditions, evaluated over the query engine; the alert state machine stored as events.
        .target(
            name: "TwinRules",
            dependencies: ["TwinCore", "TwinStorage", "TwinQuery", "TwinAnalytics", .product(name: "Yams", package: "Yams")],
            resources: [.embedInCode("Resources/default-rules.yml"), .embedInCode("Resources/compliance-rules.yml")],
            swiftSettings: swiftSettings
        ),
        // The fuzz targets as plain functions of bytes: libFuzzer drives them (Fuzz/, scripts/fuzz.sh), the
        // tests replay the saved corpora through them.
        .target(
            name: "TwinFuzzTargets",
            dependencies: [
                "TwinCore", "TwinCollectors", "TwinStorage", "TwinQuery", "TwinAnalytics", "TwinSecurity", "TwinServer", "TwinSync", "TwinRules",
                "TwinRuntime", "TwinPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "hosttwin",
            dependencies: [
                "TwinCore", "TwinCollectors", "TwinStorage", "TwinQuery", "TwinAnalytics", "TwinSecurity", "TwinServer", "TwinRuntime", "TwinRules",
                "TwinPostgres", "CProcessTuning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HostTwinTests",
            dependencies: ["TwinCore", "TwinCollectors", "TwinStorage", "TwinQuery", "TwinAnalytics", "TwinSecurity", "TwinServer", "TwinRuntime", "TwinSync", "TwinRules", "TwinFuzzTargets", "TwinPostgres", "CProcessTuning"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)

// `HOSTTWIN_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer ...` (scripts/fuzz.sh) adds the libFuzzer driver; it links
// only with the fuzzer runtime, so ordinary builds leave it out.
if Context.environment["HOSTTWIN_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "HostTwinFuzz", dependencies: ["TwinFuzzTargets"], path: "Fuzz/HostTwinFuzz",
                                             swiftSettings: swiftSettings))
}
