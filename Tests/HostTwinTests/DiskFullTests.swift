import Foundation
import Testing
import TwinCore
@testable import TwinStorage

/// A full disk pauses collection with a clear log line; freeing space resumes it; nothing corrupts.
/// Needs root (it mounts a small tmpfs); elsewhere it says so and skips.
@Suite struct DiskFullTests {
    /// Whether a tmpfs can be mounted here (root, and a kernel and sandbox that allow it).
    static let canMountTmpfs: Bool = {
        guard getuid() == 0, let dir = try? temporaryDirectory("diskfull-probe") else { return false }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ tool: String, _ args: [String]) -> Bool {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = args
            guard (try? p.run()) != nil else { return false }
            p.waitUntilExit()
            return p.terminationStatus == 0
        }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]) else { return false }
        return run("/bin/umount", [dir])
    }()

    /// Mounts a tmpfs of `size` (`6m`) on `dir`.
    static func mountTmpfs(_ dir: String, size: String) throws {
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", dir]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mount tmpfs failed although the probe succeeded")
    }

    static func unmount(_ dir: String) {
        let u = Process()
        u.executableURL = URL(fileURLWithPath: "/bin/umount")
        u.arguments = [dir]
        try? u.run()
        u.waitUntilExit()
    }

    @Test(.enabled(if: canMountTmpfs, "needs root and permission to mount a small tmpfs"))
    func diskFullPausesThenResumes() throws {
        guard let binary = EndToEndTests.binary else { Issue.record("hosttwin binary not built"); return }
        let mnt = try temporaryDirectory("diskfull")
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        try Self.mountTmpfs(mnt, size: "6m")
        defer { Self.unmount(mnt) }
        let dir = mnt + "/data"
        let logPath = NSTemporaryDirectory() + "diskfull-\(getpid()).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { unlink(logPath) }
        let run = Process()
        run.executableURL = URL(fileURLWithPath: binary)
        run.arguments = ["run", "--data-dir", dir, "--listen", "127.0.0.1:0", "--interval", "200ms", "--head-window", "2s",
                         "--disable", "packages", "--disable", "processes"]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try run.run()
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        func loadTimes() -> [Int64] {
            ((try? TwinStore.open(dataDir: dir, readOnly: true).samples(SeriesKey("node_load1"), from: 0, to: .max)) ?? nil)?.map(\.0) ?? []
        }
        #expect(try EndToEndTests.eventually(20) { loadTimes().count > 5 }, "run stores ticks")
        // Fill the file system.
        let filler = mnt + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
        let block = [UInt8](repeating: 0, count: 65_536)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        let filledAt = TwinTime.nowMillis()
        // The first commit that needs a new block fails; SQLite reuses WAL pages it already has, so under a
        // full test run on two cores that can take well over 15 s.
        #expect(try EndToEndTests.eventually(40) { log().contains("collection paused") }, "a clear line says collection paused: \(log())")
        #expect(run.isRunning, "run keeps going while the disk is full")
        usleep(1_000_000)
        unlink(filler)
        let freedAt = TwinTime.nowMillis()
        #expect(try EndToEndTests.eventually(40) { log().contains("collection resumed") }, "a line says collection resumed: \(log())")
        #expect(try EndToEndTests.eventually(15) { (loadTimes().last ?? 0) > freedAt + 1000 }, "ticks are stored again")
        kill(run.processIdentifier, SIGTERM)
        run.waitUntilExit()
        print(log().split(separator: "\n").filter { $0.contains("collection") || $0.contains("seal") }.joined(separator: "\n"))
        #expect(run.terminationStatus == 0, "clean stop after the disk filled: \(log())")
        let times = loadTimes()
        #expect(times.contains { $0 < filledAt } && times.contains { $0 > freedAt })
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
        let report = try StoreDoctor.check(dataDir: dir)
        #expect(report.ok, "\(report.problems.map { "\($0.file): \($0.detail)" })")
    }
}
