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
