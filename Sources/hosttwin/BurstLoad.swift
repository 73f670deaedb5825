import Foundation
import TwinAnalytics
import TwinCollectors
import TwinCore

/// Bursts of load for the accuracy study: after a random pause of 2–15 s, one of a CPU spin, loopback
/// UDP traffic or fsync'd disk writes for 0.2–3 s, until stopped. Seeded, so runs repeat.
final class BurstLoad: @unchecked Sendable { // the thread owns `rng`; `stopped` is the only shared state
    private var rng: SeededRandom
    private let stopped = ManagedAtomicFlag()
    private let done = DispatchSemaphore(value: 0)
    private let scratch: String
    private(set) var bursts: [(kind: String, seconds: Double)] = []

    init(seed: UInt64, scratch: String) {
        rng = SeededRandom(seed: seed)
        self.scratch = scratch
    }

    func start() {
        let t = Thread { [self] in loop(); done.signal() }
        t.name = "hosttwin-bursts"
        t.start()
    }

    func stop() {
        stopped.set()
        done.wait()
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private func loop() {
        // A UDP socket bound on loopback and never read: datagrams sent to it count in lo's bytes.
        let sink = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0), sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sink); close(sender) }
        var a = loopbackAddress(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sink, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sink, $0, &len) } }
        let payload = [UInt8](repeating: 0x5a, count: 60_000)
        let block = [UInt8](repeating: 0xa5, count: 1 << 20)
        let path = scratch + "/burst-\(getpid()).bin"
        defer { unlink(path) }
        while !stopped.isSet {
            let pause = Double.random(in: 2...15, using: &rng)
            let until = now() + pause
            while now() < until, !stopped.isSet { usleep(50_000) }
            if stopped.isSet { break }
            let kind = ["cpu", "network", "disk"][Int.random(in: 0..<3, using: &rng)]
            let seconds = Double.random(in: 0.2...3, using: &rng)
            bursts.append((kind, seconds))
            let end = now() + seconds
            switch kind {
            case "cpu":
                var x: UInt64 = 1
                while now() < end { for _ in 0..<10_000 { x = x &* 6_364_136_223_846_793_005 &+ 1 } }
                if x == 0 { print("") } // keeps the loop from being optimised away
            case "network":
                while now() < end {
                    _ = payload.withUnsafeBytes { p in
                        withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, p.baseAddress, p.count, 0, $0, len) } }
                    }
                }
            default:
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                guard fd >= 0 else { continue }
                while now() < end { _ = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }; fsync(fd) }
                close(fd)
                unlink(path)
            }
        }
    }
}

/// A reference capture for the accuracy study: /proc/stat, /proc/net/dev and /proc/diskstats every
/// `stepMillis`, as three counters — CPU busy seconds (all CPUs, all modes but idle and iowait), bytes
/// received on loopback, and bytes written to whole disks.
struct ReferenceCapture {
    var cpuBusySeconds: [Double] = []
    var loopbackBytes: [Double] = []
    var diskWrittenBytes: [Double] = []
    /// The largest lateness of a step (ms): how far the capture's own timing strays from the grid.
    var worstLateness: Int64 = 0

    static func capture(stepMillis: Int64, duration: Int64) -> ReferenceCapture {
        var out = ReferenceCapture()
        let disks = Set(((try? FileManager.default.contentsOfDirectory(atPath: "/sys/block")) ?? []).filter { !$0.hasPrefix("loop") && !$0.hasPrefix("ram") && !$0.hasPrefix("zram") })
        let start = TwinTime.nowMillis() / stepMillis * stepMillis + stepMillis
        var k: Int64 = 0
        while k * stepMillis < duration {
            let due = start + k * stepMillis
            let now = TwinTime.nowMillis()
            if due > now { usleep(useconds_t((due - now) * 1000)) }
            out.worstLateness = max(out.worstLateness, TwinTime.nowMillis() - due)
            let stat = parseProcStat((try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? "")
            let all = stat.cpus.first { $0.index == nil }?.ticks ?? []
            let busy = all.enumerated().filter { $0.offset != 3 && $0.offset != 4 && $0.offset < 8 }.reduce(0) { $0 + $1.element }
            out.cpuBusySeconds.append(busy / 100)
            let lo = parseNetDev((try? String(contentsOfFile: "/proc/net/dev", encoding: .utf8)) ?? "").first { $0.device == "lo" }
            out.loopbackBytes.append(lo?.receive.first ?? 0)
            let written = parseDiskstats((try? String(contentsOfFile: "/proc/diskstats", encoding: .utf8)) ?? "")
                .filter { disks.contains($0.device) && $0.counters.count > 6 }.reduce(0) { $0 + $1.counters[6] * 512 }
            out.diskWrittenBytes.append(written)
            k += 1
        }
        return out
    }
}
