import Foundation
import Glibc
import Synchronization
import TwinCore

/// `bench fidelity --packages N`: installs and removes an empty package of its own with dpkg, N times, and
/// notes when dpkg's status file changed each time (its modification time after dpkg returns), so the
/// update latency of "package installed" and "package removed" can be read from the twin's versions.
/// Needs root, `dpkg` and `dpkg-deb`; the package is purged before and after.
final class PackageProbe: Sendable {
    /// The probe's package name and its key in the twin (`NAME:ARCH`).
    static let name = "hosttwin-latency-probe"
    static let key = name + ":all"
    static let status = "/var/lib/dpkg/status"
    private static let dpkg = "/usr/bin/dpkg", dpkgDeb = "/usr/bin/dpkg-deb"

    /// What was changed and when dpkg's status file says it was.
    struct Change: Sendable {
        var installed: Bool
        var at: Int64
    }

    private let deb: String
    private let count: Int
    private let spacing: Int64
    private let state = Mutex<(changes: [Change], failures: [String], stop: Bool)>(([], [], false))
    private let done = Mutex<Bool>(false)

    /// Why this host cannot run the probe; nil when it can.
    static var unavailable: String? {
        if getuid() != 0 { return "--packages installs a package with dpkg and needs root" }
        let missing = [dpkg, dpkgDeb].filter { !FileManager.default.isExecutableFile(atPath: $0) }
        return missing.isEmpty ? nil : "--packages needs \(missing.joined(separator: " and ")) (Debian's dpkg)"
    }

    /// Builds the probe's package in `dir`; `count` installs (each removed half a spacing later) spread over `over` ms.
    init(in dir: String, count: Int, over: Int64) throws {
        let tree = dir + "/probe"
        try FileManager.default.createDirectory(atPath: tree + "/DEBIAN", withIntermediateDirectories: true)
        try Data("""
            Package: \(Self.name)
            Version: 1.0
            Architecture: all
            Maintainer: HostTwin bench fidelity <root@localhost>
            Description: empty package installed and removed to measure the twin's update latency\n
            """.utf8).write(to: URL(fileURLWithPath: tree + "/DEBIAN/control"))
        deb = dir + "/probe.deb"
        if let error = Self.run(Self.dpkgDeb, ["--build", tree, deb]) { throw CLIError("building the probe package: \(error)") }
        self.count = count
        spacing = max(2_000, over / Int64(max(1, count)))
        Self.purge()
    }

    /// Installs and removes the package `count` times on a thread of its own.
    func start() {
        Thread { [self] in
            for _ in 0..<count {
                for (install, wait) in [(true, spacing / 2), (false, spacing - spacing / 2)] {
                    guard pause(wait) else { return finish() }
                    let error = install ? Self.run(Self.dpkg, ["-i", deb]) : Self.run(Self.dpkg, ["-r", Self.name])
                    let at = Self.statusChanged()
                    state.withLock { s in
                        if let error { s.failures.append(error) } else if let at { s.changes.append(Change(installed: install, at: at)) }
                    }
                }
            }
            finish()
        }.start()
    }

    /// Stops after the install or removal under way, waits for it, and purges the package.
    func stop() -> (changes: [Change], failures: [String]) {
        state.withLock { $0.stop = true }
        while !done.withLock({ $0 }) { usleep(20_000) }
        Self.purge()
        return state.withLock { ($0.changes, $0.failures) }
    }

    private func finish() { done.withLock { $0 = true } }

    /// Sleeps `ms` in short steps; false when asked to stop.
    private func pause(_ ms: Int64) -> Bool {
        let until = TwinTime.nowMillis() + ms
        while TwinTime.nowMillis() < until {
            if state.withLock({ $0.stop }) { return false }
            usleep(50_000)
        }
        return !state.withLock { $0.stop }
    }

    private static func purge() { _ = run(dpkg, ["--purge", name]) }

    /// The status file's modification time (ms).
    private static func statusChanged() -> Int64? {
        var st = stat()
        guard stat(status, &st) == 0 else { return nil }
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
    }

    /// Runs `executable` with `arguments` (no shell); nil when it exited 0, else what went wrong.
    private static func run(_ executable: String, _ arguments: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch { return "\(executable): \(error)" }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? nil : "\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) exited \(p.terminationStatus): \(text.prefix(300))"
    }
}
