import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore
import TwinServer
import TwinSecurity
import TwinStorage

/// `hosttwin bench collect`: CPU per tick of the default collectors and of the store commit, RSS of the
/// tick loop at the end, and, when node_exporter is installed, its CPU per scrape measured in the same run.
struct BenchCollect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collect", abstract: "CPU time per tick of all default collectors and the store; RSS; node_exporter side by side.")
    @OptionGroup var hostPaths: HostPathOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("How long to run the tick loop.", valueName: "DURATION")) var duration: String = "60s"
    @Option(help: ArgumentHelp("Tick interval.", valueName: "DURATION")) var interval: String = "1s"
    @Option(help: ArgumentHelp("Store directory for the run (default: a fresh temporary one, removed after).", valueName: "DIR")) var dataDir: String?
    @Option(help: ArgumentHelp("node_exporter binary to compare with (skipped when absent).", valueName: "PATH"))
    var nodeExporter: String = "/usr/bin/prometheus-node-exporter"
    @Flag(inversion: .prefixedNo, help: "Also run the real `hosttwin run` beside the loop and report its CPU and RSS.")
    var runProcess = true
    @Flag(inversion: .prefixedNo, help: "Seal sensitive values at rest as `run` does (--no-seal: store them in clear, to measure the cost).")
    var seal = true

    struct Result: Encodable {
        var ticks: Int
        var samplesPerTick: Double
        var collectCPUMicrosPerTick: Double
        var commitCPUMicrosPerTick: Double
        var totalCPUMicrosPerTick: Double
        var processCPUPercentOfOneCore: Double
        var rssBytes: Int64
        var perCollectorMicros: [String: Double]
        var nodeExporter: NodeExporter?
        var runProcess: RunProcess?
        /// The real `hosttwin run` (collection, store, HTTP server) measured from outside over the same period.
        struct RunProcess: Encodable {
            var seconds: Double
            var cpuMicrosPerSecond: Double
            var cpuPercentOfOneCore: Double
            var rssBytes: Int64
            enum CodingKeys: String, CodingKey { case seconds, cpuMicrosPerSecond = "cpu_us_per_second", cpuPercentOfOneCore = "cpu_percent", rssBytes = "rss_bytes" }
        }
        struct NodeExporter: Encodable {
            var scrapes: Int
            var series: Int
            var cpuMicrosPerScrape: Double
            var rssBytes: Int64
            var ratio: Double
            enum CodingKeys: String, CodingKey { case scrapes, series, cpuMicrosPerScrape = "cpu_us_per_scrape", rssBytes = "rss_bytes", ratio = "ratio_node_exporter_to_hosttwin" }
        }
        enum CodingKeys: String, CodingKey {
            case ticks, samplesPerTick = "samples_per_tick", collectCPUMicrosPerTick = "collect_cpu_us_per_tick"
            case commitCPUMicrosPerTick = "commit_cpu_us_per_tick", totalCPUMicrosPerTick = "cpu_us_per_tick"
            case processCPUPercentOfOneCore = "process_cpu_percent", rssBytes = "rss_bytes", perCollectorMicros = "per_collector_us", nodeExporter = "node_exporter"
            case runProcess = "run_process"
        }
    }

    func run() throws {
        let total = try TwinTime.parseDuration(duration)
        let iv = try TwinTime.parseDuration(interval)
        let dir = dataDir ?? NSTemporaryDirectory() + "hosttwin-bench-\(getpid())"
        defer { if dataDir == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let store = try TwinStore.open(dataDir: dir)
        if seal { store.use(cipher: PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: dir, create: true))) }
        let writer = TwinWriter(store: store)
        try writer.begin(now: TwinTime.nowMillis(), interval: iv)
        let sampler = Sampler(paths: hostPaths.paths, tick: iv)
        let ne = NodeExporterProbe(binary: nodeExporter)
        defer { ne?.stop() }
        let runDir = dir + "-run"
        let child = runProcess ? try startRunChild(dataDir: runDir, interval: interval) : nil
        defer {
            if let child, child.isRunning { child.terminate(); child.waitUntilExit() }
            try? FileManager.default.removeItem(atPath: runDir)
        }
        // Start the outside measurement after the child's start-up.
        usleep(3_000_000)
        let childCPU0 = child.map { cpuMicros(ofProcess: $0.processIdentifier) } ?? 0
        let childStart = TwinTime.nowMillis()
        var collectCPU: Int64 = 0, commitCPU: Int64 = 0, samples = 0, ticks = 0
        var perCollector: [String: Int64] = [:]
        var neCPU: Int64 = 0, neScrapes = 0, neSeries = 0
        let start = TwinTime.nowMillis()
        let procStart = processCPUMicros()
        // The first tick warms caches (command lines, socket owners); it is not counted.
        var warm = true
        while TwinTime.nowMillis() - start < total {
            let now = TwinTime.nowMillis()
            let next = (now / iv + 1) * iv
            usleep(useconds_t((next - now) * 1000))
            let c0 = threadCPUMicros()
            let obs = sampler.tick(now: next)
            let c1 = threadCPUMicros()
            try writer.commit(obs, health: obs.health)
            let c2 = threadCPUMicros()
            if warm { warm = false; continue }
            collectCPU += c1 - c0
            commitCPU += c2 - c1
            samples += obs.samples.count
            ticks += 1
            for h in obs.health { perCollector[h.collector, default: 0] += h.durationMicros }
            if let ne, let (cpu, n) = ne.scrape() { neCPU += cpu; neScrapes += 1; neSeries = n }
        }
        let wall = Double(TwinTime.nowMillis() - start) * 1000
        let procCPU = Double(processCPUMicros() - procStart)
        try writer.finish(now: TwinTime.nowMillis())
        let t = Double(max(ticks, 1))
        let perTick = Double(collectCPU + commitCPU) / t
        var r = Result(ticks: ticks, samplesPerTick: Double(samples) / t, collectCPUMicrosPerTick: Double(collectCPU) / t,
                       commitCPUMicrosPerTick: Double(commitCPU) / t, totalCPUMicrosPerTick: perTick,
                       processCPUPercentOfOneCore: procCPU / wall * 100, rssBytes: residentBytes(pid: getpid()),
                       perCollectorMicros: perCollector.mapValues { Double($0) / t })
        if let ne, neScrapes > 0 {
            let per = Double(neCPU) / Double(neScrapes)
            r.nodeExporter = .init(scrapes: neScrapes, series: neSeries, cpuMicrosPerScrape: per, rssBytes: residentBytes(pid: ne.pid), ratio: per / perTick)
        }
        if let child, child.isRunning {
            let secs = Double(TwinTime.nowMillis() - childStart) / 1000
            let cpu = Double(cpuMicros(ofProcess: child.processIdentifier) - childCPU0)
            r.runProcess = .init(seconds: secs, cpuMicrosPerSecond: cpu / secs, cpuPercentOfOneCore: cpu / secs / 10_000,
                                 rssBytes: residentBytes(pid: child.processIdentifier))
        }
        if output.json { try printJSON(r); return }
        print(String(format: "ticks %d, %.0f samples/tick", ticks, r.samplesPerTick))
        print(String(format: "CPU per tick: %.0f µs (collect %.0f µs + store %.0f µs); whole process %.3f%% of one core; RSS %@",
                     perTick, r.collectCPUMicrosPerTick, r.commitCPUMicrosPerTick, r.processCPUPercentOfOneCore, humanBytes(Double(r.rssBytes))))
        printTable(["COLLECTOR", "µs/tick"], r.perCollectorMicros.sorted { $0.value > $1.value }.map { [$0.key, String(format: "%.1f", $0.value)] })
        if let rp = r.runProcess {
            print(String(format: "hosttwin run (separate process, %.0f s): %.0f µs CPU per second = %.3f%% of one core; RSS %@",
                         rp.seconds, rp.cpuMicrosPerSecond, rp.cpuPercentOfOneCore, humanBytes(Double(rp.rssBytes))))
        }
        if let n = r.nodeExporter {
            print(String(format: "node_exporter: %d series, %.0f µs CPU per scrape (%d scrapes), RSS %@; ratio %.1f× HostTwin's CPU per tick",
                         n.series, n.cpuMicrosPerScrape, n.scrapes, humanBytes(Double(n.rssBytes)), n.ratio))
        } else {
            print("node_exporter: not measured (\(nodeExporter) not found; apt-get install prometheus-node-exporter)")
        }
    }
}

/// Starts this binary's `run` on a fresh data directory and a loopback port (``runChildPort``).
func startRunChild(dataDir: String, interval: String, extra: [String] = []) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    p.arguments = ["run", "--data-dir", dataDir, "--interval", interval, "--listen", "127.0.0.1:\(runChildPort)", "--log-level", "error"] + extra
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

/// The loopback port of this process's `run` child.
var runChildPort: Int { 29_000 + Int(getpid() % 1000) }

/// Starts node_exporter on a loopback port and measures the CPU it spends per scrape (from /proc/PID/stat).
final class NodeExporterProbe {
    let process = Process()
    let port = 19_100 + Int(getpid() % 500)
    var pid: Int32 { process.processIdentifier }

    init?(binary: String) {
        guard FileManager.default.isExecutableFile(atPath: binary) else { return nil }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--web.listen-address=127.0.0.1:\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        for _ in 0..<50 where fetch() == nil { usleep(100_000) }
    }

    func fetch() -> String? {
        guard let (status, body) = LoopbackHTTP.get(port: port, "/metrics", timeout: 10), status == 200 else { return nil }
        return body
    }

    /// One scrape: the exporter's CPU time spent on it (µs) and the number of series returned.
    func scrape() -> (Int64, Int)? {
        let before = cpuMicros(ofProcess: pid)
        guard let text = fetch() else { return nil }
        usleep(20_000) // let the exporter finish accounting the request
        let after = cpuMicros(ofProcess: pid)
        return (after - before, text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count)
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}

/// utime + stime of another process, in µs.
func cpuMicros(ofProcess pid: Int32) -> Int64 {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let st = parsePidStat(text) else { return 0 }
    return Int64((st.utimeTicks + st.stimeTicks) / Double(sysconf(Int32(_SC_CLK_TCK))) * 1_000_000)
}

/// utime + stime of every live process named `comm` (a server's: PostgreSQL's backends), in seconds. A
/// process that exits between two readings takes its share with it.
func commandCPUSeconds(_ comm: String) -> Double {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    var total = 0.0
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where entry.first?.isNumber == true {
        guard let text = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8), let st = parsePidStat(text), st.comm == comm else { continue }
        total += (st.utimeTicks + st.stimeTicks) / ticks
    }
    return total
}

/// VmRSS of a process in bytes.
func residentBytes(pid: Int32) -> Int64 {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let f = line.split(separator: " ")
        if f.count >= 2, let kb = Int64(f[1]) { return kb * 1024 }
    }
    return 0
}
