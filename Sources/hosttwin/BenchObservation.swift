import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCollectors
import TwinCore
import TwinStorage

/// `hosttwin bench observation`: the observation study's overhead part (docs/OBSERVATION.md) — CPU per
/// second of each collector and of the store at several intervals, on this host as it is or with a
/// synthetic busy host beside it, node_exporter scraped at the same interval and Netdata collecting at
/// it in the same runs.
struct BenchObservation: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observation",
        abstract: "Overhead against interval, per collector, beside node_exporter and Netdata.",
        discussion: """
        For each of --intervals: the default collectors tick in this process for --duration (at least four \
        ticks) and commit to a temporary store — those that run every second by default at the interval, the \
        others at their own interval or the studied one, whichever is longer; each collector's CPU per second is its time per tick divided by \
        the interval. node_exporter (when installed) is scraped at the same interval; Netdata (when installed, \
        intervals of whole seconds) runs with that update interval, and its CPU per second is its process tree's \
        (the daemon and its plugins) after a warm-up. --busy-processes and --busy-sockets start a synthetic busy \
        host first: sleeping child processes and TCP sockets on loopback held by this process.

        Accuracy (--accuracy DURATION): bursts of CPU, loopback traffic and fsync'd writes (0.2–3 s after pauses         of 2–15 s) while /proc/stat, /proc/net/dev and /proc/diskstats are read every 0.1 s; each counter is         then sampled at each interval and adaptively (a base interval, a fast one for 10 s after a change larger         than the mean rate), and what each keeps of the reference is reported: the peak rate, the bursts seen         (runs above half the peak), the mean error of the rate, and samples per minute (the cost).
        """
    )
    @Option(help: ArgumentHelp("Intervals, comma-separated.", valueName: "LIST")) var intervals = "0.25s,1s,5s,15s,60s"
    @Option(help: ArgumentHelp("Measured time per interval (at least four ticks).", valueName: "DURATION")) var duration = "60s"
    @Option(help: ArgumentHelp("Sleeping processes of the synthetic busy host.", valueName: "N")) var busyProcesses = 0
    @Option(help: ArgumentHelp("Loopback TCP sockets of the synthetic busy host.", valueName: "N")) var busySockets = 0
    @Option(help: ArgumentHelp("node_exporter binary (skipped when absent).", valueName: "PATH")) var nodeExporter = "/usr/bin/prometheus-node-exporter"
    @Option(help: ArgumentHelp("Netdata binary (skipped when absent).", valueName: "PATH")) var netdata = "/usr/sbin/netdata"
    @Option(help: ArgumentHelp("Seconds Netdata runs before its CPU is measured.", valueName: "S")) var netdataWarmup = 20.0
    @Flag(inversion: .prefixedNo, help: "Measure the overhead at each interval.") var overhead = true
    @Option(help: ArgumentHelp("Length of the accuracy study's 0.1 s reference capture under bursts (0: skipped).", valueName: "DURATION")) var accuracy = "0s"
    @Option(help: "Seed of the accuracy study's bursts.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("A store with this host's 1 s data for the storage part (skipped when absent).", valueName: "DIR")) var storage: String?
    @Option(help: ArgumentHelp("Whole hours of that store's newest data the storage part encodes.", valueName: "N")) var storageHours = 6
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var intervalSeconds: Double
        var seconds: Double
        var ticks: Int
        var samplesPerTick: Double
        /// CPU µs per second of wall time, by collector; "store" is the commit.
        var cpuMicrosPerSecond: [String: Double]
        var hosttwinMicrosPerSecond: Double
        var nodeExporterMicrosPerSecond: Double?
        var nodeExporterSeries: Int?
        var netdataMicrosPerSecond: Double?
        var netdataProcesses: Int?
        enum CodingKeys: String, CodingKey {
            case intervalSeconds = "interval_s", seconds, ticks, samplesPerTick = "samples_per_tick", cpuMicrosPerSecond = "cpu_us_per_s"
            case hosttwinMicrosPerSecond = "hosttwin_us_per_s", nodeExporterMicrosPerSecond = "node_exporter_us_per_s", nodeExporterSeries = "node_exporter_series"
            case netdataMicrosPerSecond = "netdata_us_per_s", netdataProcesses = "netdata_processes"
        }
    }
    struct AccuracyResult: Encodable {
        var seconds: Double
        var bursts: [String: Int]
        var worstLatenessMillis: Int64
        var signals: [String: [IntervalStudy.Accuracy]]
        enum CodingKeys: String, CodingKey { case seconds, bursts, worstLatenessMillis = "worst_lateness_ms", signals }
    }
    struct StorageRow: Encodable {
        var intervalSeconds: Double
        var series: Int
        var bytes: TierCost.Bytes
        /// Per series per day, by tier.
        var rawPerSeriesDay: Double, minutePerSeriesDay: Double, hourPerSeriesDay: Double
        /// The whole host (all `series`) with the default retentions (raw 7 d, 1m 90 d, 1h 730 d).
        var hostBytes30Days: Double, hostBytesYear: Double
        enum CodingKeys: String, CodingKey {
            case intervalSeconds = "interval_s", series, bytes, rawPerSeriesDay = "raw_per_series_day", minutePerSeriesDay = "minute_per_series_day"
            case hourPerSeriesDay = "hour_per_series_day", hostBytes30Days = "host_bytes_30d", hostBytesYear = "host_bytes_1y"
        }
    }
    struct Result: Encodable {
        var busyProcesses: Int
        var busySockets: Int
        var rows: [Row]
        var accuracy: AccuracyResult?
        var storage: [StorageRow]?
        enum CodingKeys: String, CodingKey { case busyProcesses = "busy_processes", busySockets = "busy_sockets", rows, accuracy, storage }
    }

    func run() throws {
        let list = try intervals.split(separator: ",").map { try TwinTime.parseDuration(String($0)) }
        guard !list.isEmpty, list.allSatisfy({ $0 >= 100 }) else { throw CLIError("--intervals needs durations of at least 100ms") }
        let measured = try TwinTime.parseDuration(duration)
        let busy = busyProcesses > 0 || busySockets > 0 ? try BusyHost(processes: busyProcesses, sockets: busySockets) : nil
        defer { busy?.stop() }
        if let busy { progress("busy host: \(busy.children.count) processes, \(busy.sockets.count) sockets") }
        var rows: [Row] = []
        for iv in overhead ? list : [] {
            rows.append(try measure(interval: iv, for: max(measured, 4 * iv)))
            let r = rows.last!
            progress(String(format: "%g s: HostTwin %.0f µs/s%@%@", r.intervalSeconds, r.hosttwinMicrosPerSecond,
                            r.nodeExporterMicrosPerSecond.map { String(format: ", node_exporter %.0f µs/s", $0) } ?? "",
                            r.netdataMicrosPerSecond.map { String(format: ", Netdata %.0f µs/s", $0) } ?? ""))
        }
        let span = try TwinTime.parseDuration(accuracy)
        let study = span > 0 ? accuracyStudy(span, intervals: list) : nil
        let stored = try storage.map { try storageStudy($0, intervals: list) }
        let result = Result(busyProcesses: busy?.children.count ?? 0, busySockets: busy?.sockets.count ?? 0, rows: rows, accuracy: study, storage: stored)
        if output.json { try printJSON(result); return }
        if let stored {
            print("storage, \(storageHours) h of \(storage!) re-encoded per interval (series observed throughout; group rows, before database pages and indexes):")
            printTable(["INTERVAL", "SERIES", "RAW B/SAMPLE", "RAW/SERIES/DAY", "1M/SERIES/DAY", "1H/SERIES/DAY", "HOST 30 D", "HOST 1 Y", "1,000 HOSTS 1 Y"], stored.map {
                [String(format: "%g s", $0.intervalSeconds), "\($0.series)", String(format: "%.3f", Double($0.bytes.raw) / Double(max($0.bytes.samples, 1))),
                 humanBytes($0.rawPerSeriesDay), humanBytes($0.minutePerSeriesDay), humanBytes($0.hourPerSeriesDay),
                 humanBytes($0.hostBytes30Days), humanBytes($0.hostBytesYear), humanBytes($0.hostBytesYear * 1000)]
            })
        }
        if let study {
            print(String(format: "accuracy: %.0f s of 0.1 s reference (worst step lateness %d ms), bursts %@", study.seconds, study.worstLatenessMillis,
                         study.bursts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            for (signal, list) in study.signals.sorted(by: { $0.key < $1.key }) {
                print(signal)
                printTable(["SAMPLING", "SAMPLES/MIN", "PEAK KEPT", "BURSTS SEEN", "RATE ERROR"], list.map {
                    [$0.sampling, String(format: "%.1f", $0.samplesPerMinute), String(format: "%.0f%%", $0.peakKept * 100),
                     "\($0.burstsSeen)/\($0.bursts)", String(format: "%.0f%%", $0.relativeError * 100)]
                })
            }
        }
        guard !rows.isEmpty else { return }
        let collectors = Set(rows.flatMap { $0.cpuMicrosPerSecond.keys }).sorted { a, b in
            (rows.first?.cpuMicrosPerSecond[a] ?? 0) > (rows.first?.cpuMicrosPerSecond[b] ?? 0)
        }
        print("CPU µs per second (\(result.busyProcesses) extra processes, \(result.busySockets) extra sockets)")
        printTable(["COLLECTOR"] + rows.map { String(format: "%g s", $0.intervalSeconds) },
                   collectors.map { c in [c] + rows.map { String(format: "%.1f", $0.cpuMicrosPerSecond[c] ?? 0) } }
                   + [["HostTwin total"] + rows.map { String(format: "%.0f", $0.hosttwinMicrosPerSecond) },
                      ["node_exporter"] + rows.map { $0.nodeExporterMicrosPerSecond.map { String(format: "%.0f", $0) } ?? "-" },
                      ["Netdata"] + rows.map { $0.netdataMicrosPerSecond.map { String(format: "%.0f", $0) } ?? "-" }])
    }

    /// This host's recorded 1 s series re-encoded at each interval (every k-th sample), tier by tier.
    private func storageStudy(_ dir: String, intervals: [Int64]) throws -> [StorageRow] {
        let store = try StoreOptions.openForReading(dir)
        guard let (_, newest) = try store.sampleTimeRange() else { throw CLIError("\(dir) holds no samples") }
        let to = newest / StoragePolicy.hour * StoragePolicy.hour, from = to - Int64(storageHours) * StoragePolicy.hour
        let catalog = try store.seriesCatalog()
        let data = try store.samples(ids: catalog.map(\.id), from: from, to: to - 1)
        // Series observed throughout (a sample in 90 % of the seconds): the host's own, not short-lived processes'.
        let series = catalog.compactMap { data[$0.id] }.filter { Double($0.count) >= 0.9 * Double(storageHours) * 3600 }
        guard !series.isEmpty else { throw CLIError("no series of \(dir) has a sample in 90 % of the last \(storageHours) whole hours' seconds; try fewer --storage-hours") }
        progress("storage: \(series.count) series observed throughout \(storageHours) h of \(dir)")
        return try intervals.filter { $0 % 1000 == 0 }.map { iv in
            let kept = series.map { s in s.filter { ($0.0 / 1000) % (iv / 1000) == 0 } }.filter { !$0.isEmpty }
            let b = try TierCost.bytes(kept, from: from, to: to)
            let days = Double(storageHours) / 24, n = Double(kept.count)
            let raw = Double(b.raw) / n / days, minute = Double(b.minute) / n / days, hour = Double(b.hour) / n / days
            func disk(_ d: Double) -> Double { n * (raw * min(d, 7) + minute * min(d, 90) + hour * min(d, 730)) }
            return StorageRow(intervalSeconds: Double(iv) / 1000, series: kept.count, bytes: b, rawPerSeriesDay: raw, minutePerSeriesDay: minute,
                              hourPerSeriesDay: hour, hostBytes30Days: disk(30), hostBytesYear: disk(365))
        }
    }

    /// The 0.1 s reference capture under bursts, and each sampling's accuracy on it.
    private func accuracyStudy(_ span: Int64, intervals: [Int64]) -> AccuracyResult {
        progress("accuracy: capturing \(span / 1000) s at 0.1 s under bursts")
        let load = BurstLoad(seed: seed, scratch: NSTemporaryDirectory())
        load.start()
        let capture = ReferenceCapture.capture(stepMillis: 100, duration: span)
        load.stop()
        let pairs: [(base: Int64, fast: Int64)] = [(5_000, 1_000), (5_000, 250), (15_000, 1_000)]
        var signals: [String: [IntervalStudy.Accuracy]] = [:]
        for (name, counter) in [("cpu busy seconds", capture.cpuBusySeconds), ("loopback bytes", capture.loopbackBytes), ("disk written bytes", capture.diskWrittenBytes)] {
            signals[name] = IntervalStudy.study(counter, stepMillis: 100, intervals: intervals, adaptive: pairs)
        }
        var bursts: [String: Int] = [:]
        for b in load.bursts { bursts[b.kind, default: 0] += 1 }
        return AccuracyResult(seconds: Double(span) / 1000, bursts: bursts, worstLatenessMillis: capture.worstLateness, signals: signals)
    }

    private func measure(interval iv: Int64, for total: Int64) throws -> Row {
        let dir = NSTemporaryDirectory() + "hosttwin-bench-observation-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let writer = TwinWriter(store: store)
        try writer.begin(now: TwinTime.nowMillis(), interval: iv)
        // The tick-rate collectors (default 1 s) at the interval; the slow-fact ones at their own interval or
        // the studied one, whichever is longer.
        var intervals: [String: Int64] = [:]
        for e in CollectorRegistry.all { intervals[e.name] = e.defaultInterval == 1000 ? iv : max(e.defaultInterval, iv) }
        let sampler = Sampler(selection: CollectorSelection(intervals: intervals), tick: iv)
        let nd = iv % 1000 == 0 ? NetdataProbe(binary: netdata, every: Int(iv / 1000)) : nil
        defer { nd?.stop() }
        if nd != nil { usleep(useconds_t(netdataWarmup * 1_000_000)) }
        let ne = NodeExporterProbe(binary: nodeExporter)
        defer { ne?.stop() }
        // Two ticks warm caches (command lines, socket owners) before anything is counted.
        for _ in 0..<2 { try writer.commit(sampler.tick(now: TwinTime.nowMillis())) ; usleep(useconds_t(min(iv, 1000) * 1000)) }
        let ne0 = ne.map { cpuMicros(ofProcess: $0.pid) }, nd0 = nd?.treeCPUMicros()
        var perCollector: [String: Int64] = [:]
        var store0: Int64 = 0, samples = 0, ticks = 0, neSeries: Int?
        let start = TwinTime.nowMillis()
        while TwinTime.nowMillis() - start < total {
            let now = TwinTime.nowMillis()
            let next = (now / iv + 1) * iv
            usleep(useconds_t((next - now) * 1000))
            let obs = sampler.tick(now: next)
            let c0 = threadCPUMicros()
            try writer.commit(obs, health: obs.health)
            store0 += threadCPUMicros() - c0
            for h in obs.health { perCollector[h.collector, default: 0] += h.durationMicros }
            samples += obs.samples.count
            ticks += 1
            if let ne, let text = ne.fetch() { neSeries = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count }
        }
        let seconds = Double(TwinTime.nowMillis() - start) / 1000
        try writer.finish(now: TwinTime.nowMillis())
        perCollector["store"] = store0
        let perSecond = perCollector.mapValues { Double($0) / seconds }
        return Row(intervalSeconds: Double(iv) / 1000, seconds: seconds, ticks: ticks, samplesPerTick: Double(samples) / Double(max(ticks, 1)),
                   cpuMicrosPerSecond: perSecond, hosttwinMicrosPerSecond: perSecond.values.reduce(0, +),
                   nodeExporterMicrosPerSecond: ne.map { Double(cpuMicros(ofProcess: $0.pid) - ne0!) / seconds }, nodeExporterSeries: neSeries,
                   netdataMicrosPerSecond: nd.flatMap { p in nd0.map { Double(p.treeCPUMicros() - $0) / seconds } }, netdataProcesses: nd?.tree().count)
    }
}

/// Netdata 1.37 in the foreground on a loopback port with update interval `every` seconds and its own
/// scratch directories; its CPU is that of its process tree (the daemon and the plugins it starts).
final class NetdataProbe {
    /// Started with posix_spawn and reaped here: Foundation's `Process` waits for a child that ignores
    /// SIGTERM on its monitor thread, which then stalls every other `Process` of this one.
    let pid: pid_t
    let dir = NSTemporaryDirectory() + "hosttwin-netdata-\(getpid())"

    init?(binary: String, every: Int) {
        guard FileManager.default.isExecutableFile(atPath: binary) else { return nil }
        for sub in ["cache", "lib", "log"] { try? FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let args = [binary, "-D", "-i", "127.0.0.1", "-p", "\(19_990 - Int(getpid() % 500))", "-u", "root", "-t", "\(every)",
                    "-W", "set", "global", "cache directory", "\(dir)/cache", "-W", "set", "global", "lib directory", "\(dir)/lib",
                    "-W", "set", "global", "log directory", "\(dir)/log", "-W", "set", "global", "run as user", "root"]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0) }
        // Its own process group, so that whatever it starts goes with it at the end.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var child: pid_t = 0
        guard posix_spawn(&child, binary, &actions, &attributes, argv, environ) == 0 else { return nil }
        pid = child
    }

    /// The daemon and every live descendant.
    func tree() -> [Int32] {
        var parent: [Int32: Int32] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(name), let text = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8), let st = parsePidStat(text) else { continue }
            parent[p] = Int32(st.ppid)
        }
        var members: Set<Int32> = [pid]
        var grew = true
        while grew {
            grew = false
            for (p, pp) in parent where members.contains(pp) && !members.contains(p) { members.insert(p); grew = true }
        }
        return Array(members)
    }

    func treeCPUMicros() -> Int64 { tree().reduce(0) { $0 + cpuMicros(ofProcess: $1) } }

    /// SIGTERM to the tree, SIGKILL to what is left after 5 s (Netdata 1.37 does not always exit on SIGTERM).
    func stop() {
        let members = tree()
        for p in members { kill(p, SIGTERM) }
        var status: Int32 = 0
        for _ in 0..<50 where waitpid(pid, &status, WNOHANG) == 0 { usleep(100_000) }
        for p in members { kill(p, SIGKILL) }
        kill(-pid, SIGKILL)
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
