import Foundation
import Testing

/// Paths of the fixtures the tests read.
enum Fixtures {
    /// The package root (two levels above this file's directory).
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent() // HostTwinTests
        url.deleteLastPathComponent() // Tests
        url.deleteLastPathComponent() // root
        return url.path
    }()

    /// Files captured from this project's development VM (Tests/HostTwinTests/Fixtures/vm).
    static let vm = packageRoot + "/Tests/HostTwinTests/Fixtures/vm"

    static func vmText(_ rel: String) throws -> String {
        try String(contentsOfFile: vm + "/" + rel, encoding: .utf8)
    }

    /// `../shared/data` beside the project, when present (CI and developer machines have it).
    static let sharedData: String? = {
        let p = URL(fileURLWithPath: packageRoot).deletingLastPathComponent().appendingPathComponent("shared/data").path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }()

    static var hasSharedData: Bool { sharedData != nil }
    static let skipMessage = "needs ../shared/data (node_exporter and procfs fixtures); absent here"
}

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory(_ name: String = "hosttwin-test") throws -> String {
    let dir = NSTemporaryDirectory() + "\(name)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A deterministic generator (SplitMix64), so a failing random test can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
