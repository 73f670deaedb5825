import Foundation
import Testing
import TwinCollectors
import TwinCore

/// Every collector against an empty root and against trees of garbage and truncated files: no crash,
/// one health line per collector, and "no data" where a source is missing.
@Suite struct CollectorRobustnessTests {
    static let files = [
        "proc/stat", "proc/meminfo", "proc/loadavg", "proc/vmstat", "proc/diskstats", "proc/net/dev", "proc/net/snmp",
        "proc/net/netstat", "proc/net/snmp6", "proc/net/sockstat", "proc/net/sockstat6", "proc/net/tcp", "proc/net/udp",
        "proc/pressure/cpu", "proc/pressure/io", "proc/1/mountinfo", "proc/1/stat", "proc/1/io", "proc/1/cmdline",
        "proc/42/stat", "proc/sys/fs/file-nr", "proc/sys/kernel/random/entropy_avail", "proc/sys/kernel/pid_max",
        "proc/cpuinfo", "sys/class/thermal/thermal_zone0/temp", "sys/class/thermal/thermal_zone0/type",
        "sys/class/hwmon/hwmon0/temp1_input", "sys/class/hwmon/hwmon0/name", "sys/class/net/eth0/operstate",
        "sys/fs/ext4/vda/errors_count", "etc/os-release", "etc/passwd", "var/lib/dpkg/status", "run/utmp",
    ]

    /// Files larger than the reader's buffer come back whole: a regular file (grown once to its size) and
    /// a /proc file (which says its size is 0, grown by doubling), then a small one with the same reader.
    @Test func theReaderReadsFilesLargerThanItsBuffer() throws {
        let root = try temporaryDirectory("reader")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let large = (0..<30_000).map { "line \($0)\n" }.joined()
        try large.write(toFile: root + "/large", atomically: false, encoding: .utf8)
        try "small".write(toFile: root + "/small", atomically: false, encoding: .utf8)
        let reader = FileReader(capacity: 16)
        #expect(reader.read(root + "/large") == large)
        let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
        #expect(maps.utf8.count > 16)
        #expect(reader.read("/proc/self/maps")?.hasPrefix(String(maps.prefix(16))) == true)
        #expect(reader.read(root + "/small") == "small")
        #expect(reader.read(root + "/missing") == nil)
    }

    /// A held descriptor is read afresh from its start each time (/proc/uptime moves between two reads; a
    /// file larger than the buffer comes back whole twice); a file outside /proc and /sys is not held (a
    /// rename that replaces it is seen); a held file that went away (an exited process's) reads as nothing.
    @Test func heldFilesAreReadAfresh() throws {
        let reader = FileReader(capacity: 16)
        let first = try #require(reader.readHeld("/proc/uptime"))
        usleep(30_000)
        let second = try #require(reader.readHeld("/proc/uptime"))
        #expect(first != second && first.split(separator: " ").count == 2)
        let limits = try String(contentsOfFile: "/proc/self/limits", encoding: .utf8)
        #expect(reader.readHeld("/proc/self/limits") == limits && reader.readHeld("/proc/self/limits") == limits)

        let root = try temporaryDirectory("held")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "before".write(toFile: root + "/f", atomically: true, encoding: .utf8)
        #expect(reader.readHeld(root + "/f") == "before")
        try "after".write(toFile: root + "/f", atomically: true, encoding: .utf8) // a new file renamed over it
        #expect(reader.readHeld(root + "/f") == "after")

        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        let status = "/proc/\(child.processIdentifier)/status"
        #expect(reader.readHeld(status)?.contains("sleep") == true)
        child.terminate()
        child.waitUntilExit()
        #expect(reader.readHeld(status) == nil)
    }

    /// The live mount table is read again only when the kernel flags a change: a tmpfs mounted and
    /// unmounted between ticks shows at the next tick and goes at the one after (root only: it mounts).
    @Test(.enabled(if: getuid() == 0, "mounting needs root")) func theMountTableIsReadWhenTheKernelFlagsIt() throws {
        let dir = try temporaryDirectory("mount-flag")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ args: [String]) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/mount")
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            return p.terminationStatus
        }
        let reader = FileReader()
        #expect(reader.readHeld("/proc/self/mountinfo") != nil)
        #expect(!reader.heldFileMayHaveChanged("/proc/self/mountinfo"))
        #expect(reader.heldFileMayHaveChanged("/proc/self/never-read"))

        let sampler = Sampler(selection: CollectorSelection(enabled: Dictionary(uniqueKeysWithValues: CollectorRegistry.all.map { ($0.name, $0.name == "filesystem") })))
        let t0 = TwinTime.nowMillis()
        // Whether the tick's mounts hold `dir`; nil when the tick left the mounts as they were.
        func mounted(_ t: Int64) -> Bool? { sampler.tick(now: t, force: true).entities[.mounts].map { $0.contains { $0.key == dir } } }
        #expect(mounted(t0) == false)
        #expect(mounted(t0 + 1000) == nil)
        try #require(try run(["-t", "tmpfs", "-o", "size=1m", "hosttwin-test", dir]) == 0)
        var unmounted = false
        defer { if !unmounted { _ = umount2(dir, 2) } } // MNT_DETACH
        #expect(reader.heldFileMayHaveChanged("/proc/self/mountinfo"))
        #expect(!reader.heldFileMayHaveChanged("/proc/self/mountinfo")) // a flag is reported once
        #expect(mounted(t0 + 2000) == true)
        #expect(mounted(t0 + 3000) == nil)
        unmounted = umount2(dir, 0) == 0
        #expect(unmounted)
        #expect(mounted(t0 + 4000) == false)
    }

    @Test func emptyRootIsNoDataNotACrash() throws {
        let root = try temporaryDirectory("empty-root")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let sampler = Sampler(paths: HostPaths.under(root), config: CollectorConfig(backupPaths: ["/nowhere"]))
        let obs = sampler.tick(now: 1_800_000_000_000, force: true)
        #expect(obs.health.count == sampler.collectorNames.count)
        #expect(obs.health.allSatisfy { $0.status != .error }, "\(obs.health.filter { $0.status == .error })")
        #expect(obs.health.first { $0.collector == "cpu" }?.status == .noData)
        #expect(obs.samples.allSatisfy { !$0.key.metric.hasPrefix("node_cpu") })
    }

    @Test func garbageAndTruncatedFiles() throws {
        var rng = SystemRandomNumberGenerator()
        let real = try ["proc/stat", "proc/meminfo", "proc/net/dev", "proc/net/snmp", "proc/net/netstat", "proc/diskstats",
                        "proc/self/mountinfo", "proc/net/tcp", "proc/vmstat", "proc/loadavg"].map { try Fixtures.vmText($0) }
        for round in 0..<25 {
            let root = try temporaryDirectory("garbage-root")
            defer { try? FileManager.default.removeItem(atPath: root) }
            for rel in Self.files {
                let path = root + "/" + rel
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                var bytes: [UInt8]
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes = (0..<Int.random(in: 0...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                case 1: // a real file cut at a random point
                    let r = Array(real.randomElement(using: &rng)!.utf8)
                    bytes = Array(r.prefix(Int.random(in: 0...r.count, using: &rng)))
                case 2: // a real file with random lines dropped and fields mangled
                    bytes = Array(real.randomElement(using: &rng)!.split(separator: "\n").compactMap { line -> String? in
                        if Bool.random(using: &rng) { return nil }
                        return String(line.map { c -> Character in Int.random(in: 0..<20, using: &rng) == 0 ? "(" : c })
                    }.joined(separator: "\n").utf8)
                default: bytes = []
                }
                FileManager.default.createFile(atPath: path, contents: Data(bytes))
            }
            // A process listed in /proc that vanished before its files were read.
            try FileManager.default.createDirectory(atPath: root + "/proc/77", withIntermediateDirectories: true)
            let sampler = Sampler(paths: HostPaths.under(root))
            for i in 0..<2 {
                let obs = sampler.tick(now: 1_800_000_000_000 + Int64(round * 10 + i) * 1000, force: true)
                #expect(obs.health.count == sampler.collectorNames.count)
                #expect(obs.samples.allSatisfy { !$0.key.metric.isEmpty })
                _ = PrometheusText.render(obs.samples, types: obs.types)
            }
        }
    }

    /// Numbers no kernel writes, in every numeric field of real files: each parser either skips the line
    /// or saturates, never traps (issue 12: `cpu99999999999999999999999` in proc/stat and `1e300` in
    /// proc/diskstats crashed collection).
    @Test(arguments: ["1e300", "99999999999999999999999", "-9223372036854775809", "18446744073709551616", "nan", "inf", "-1"])
    func hostileNumbers(_ hostile: String) throws {
        let root = try temporaryDirectory("hostile-root")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let real = ["proc/stat", "proc/meminfo", "proc/net/dev", "proc/net/snmp", "proc/net/netstat", "proc/diskstats",
                    "proc/net/tcp", "proc/vmstat", "proc/loadavg"]
        func write(_ rel: String, _ text: String) throws {
            let path = root + "/" + rel
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        }
        let digits = try NSRegularExpression(pattern: "\\b[0-9]+\\b")
        for rel in real {
            let text = try Fixtures.vmText(rel)
            try write(rel, digits.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: hostile))
        }
        // The defect's own lines, beside the real ones.
        try write("proc/stat", try Fixtures.vmText("proc/stat") + "cpu99999999999999999999999 1 2 3 4 5 6 7 8 9 10\ncpu\(hostile) 1 2 3 4 5\n")
        try write("proc/diskstats", try Fixtures.vmText("proc/diskstats") + " 253 0 vdz 1e300 1 1 1 1 1 1 1 1 1 1\n \(hostile) \(hostile) vdy 1 1 1 1 1 1 1 1 1 1 1\n")
        for (rel, v) in ["proc/1/stat": "1 (init) S \(hostile) 1 1 0 -1 \(hostile) 1 1 1 1 \(hostile) \(hostile) 0 0 20 0 \(hostile) 0 \(hostile) \(hostile) \(hostile) 1 1\n",
                         "proc/1/cmdline": "/sbin/init\u{0}", "proc/1/io": "rchar: \(hostile)\nwchar: \(hostile)\n",
                         "sys/class/net/eth0/mtu": hostile, "sys/class/net/eth0/speed": hostile, "sys/class/net/eth0/operstate": "up",
                         "sys/class/hwmon/hwmon0/temp1_input": hostile, "sys/class/hwmon/hwmon0/name": "cpu",
                         "sys/class/thermal/thermal_zone0/temp": hostile, "sys/class/thermal/thermal_zone0/type": "x86_pkg_temp",
                         "proc/sys/fs/file-nr": "\(hostile) 0 \(hostile)", "proc/pressure/cpu": "some avg10=\(hostile) avg60=0 avg300=0 total=\(hostile)\n"] {
            try write(rel, v)
        }
        let sampler = Sampler(paths: HostPaths.under(root))
        for i in 0..<2 {
            let obs = sampler.tick(now: 1_800_000_000_000 + Int64(i) * 1000, force: true)
            #expect(obs.health.count == sampler.collectorNames.count)
            #expect(!obs.samples.contains { $0.key.labels["cpu"].map { $0.count > 7 } ?? false }, "a CPU index beyond 7 digits is no CPU")
            _ = PrometheusText.render(obs.samples, types: obs.types)
        }
    }
}
