import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Host facts and a one-screen summary: CPU, memory, load, busiest processes, disks, network, collector health.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    struct StatusJSON: Encodable {
        var at: String
        var lastTick: String?
        var running: Bool
        var host: [String: AttributeValue]
        var summary: HostSummary
        var collectors: [CollectorHealth]
        /// The store's sync position: its epoch (hex) and the sequence number of its newest tick.
        var epoch: String?
        var lastTickSeq: UInt64
        /// Ticks stored over the last day against those the interval would have taken, with the gaps.
        var completeness: TickCompleteness?
        /// Each collector's stored runs over the same window and how many succeeded.
        var collectorRuns: [CollectorCompleteness]
        enum CodingKeys: String, CodingKey {
            case at, lastTick = "last_tick", running, host, summary, collectors, epoch, lastTickSeq = "last_tick_seq", completeness, collectorRuns = "collector_runs"
        }
    }

    func run() throws {
        let t = try parseTime(at.at, "--at")
        let s = try store.openForReading()
        let (series, latestByID, previousByID) = try s.latestValues(at: t, lookback: latestValuesLookback)
        var latest: [SeriesKey: (Int64, Double)] = [:]
        var previous: [SeriesKey: (Int64, Double)] = [:]
        for (id, v) in latestByID { if let k = series[id]?.key { latest[k] = v } }
        for (id, v) in previousByID { if let k = series[id]?.key { previous[k] = v } }
        let summary = HostSummary(latest: latest, previous: previous)
        let host = try s.state(at: t, kinds: [.host]).first?.attributes ?? [:]
        let runs = try s.runs()
        let lastTick = try s.lastTick()
        let running = runs.last.map { $0.stopped == nil && (lastTick ?? 0) > TwinTime.nowMillis() - 5 * $0.interval - 2000 } ?? false
        let health = try s.health()
        let completeness = try s.completeness(from: t - 86_400_000, to: min(t, lastTick ?? t))
        let collectorRuns = try completeness.map { try s.collectorCompleteness(from: $0.from, to: $0.to) } ?? []
        if output.json {
            try printJSON(StatusJSON(at: TwinTime.rfc3339(t), lastTick: lastTick.map(TwinTime.rfc3339), running: running, host: host, summary: summary, collectors: health,
                                     epoch: try s.epoch().map { String($0, radix: 16) }, lastTickSeq: try s.lastTickSeq(), completeness: completeness,
                                     collectorRuns: collectorRuns))
            return
        }
        func a(_ k: String) -> String { host[k]?.description ?? "?" }
        print("\(a("hostname"))  \(a("os"))  kernel \(a("kernel"))  \(a("architecture"))")
        print("CPU: \(a("cpu_model")) × \(a("cpu_count"))   memory: \(host["memory_bytes"]?.doubleValue.map(humanBytes) ?? "?")   booted: \(a("boot_time"))")
        if let bt = host["boot_time"].flatMap({ try? TwinTime.parse($0.description) }) {
            print("uptime: \(formatDuration(t - bt))   machine-id: \(a("machine_id"))")
        }
        print("twin: \(running ? "running" : "not running")  last tick: \(lastTick.map(TwinTime.rfc3339) ?? "none")  data: \(s.dataDir)")
        if let c = completeness {
            print(completenessLine(c))
            if !collectorRuns.isEmpty { print(collectorRunsLine(collectorRuns)) }
        }
        if latest.isEmpty {
            print("\nno samples within 30 s before \(TwinTime.rfc3339(t))")
            return
        }
        print("")
        for l in summaryLines(summary) { print(l) }
        print("")
        printTable(["COLLECTOR", "STATUS", "DETAIL"], health.map { [$0.collector, $0.status.rawValue, $0.message ?? ""] })
    }
}

/// The one-screen summary shared by `status` and `top`: CPU, memory, load, busiest processes,
/// filesystems and interfaces.
func summaryLines(_ summary: HostSummary) -> [String] {
    let cpu = summary.cpuPercent.map { String(format: "%.1f%%", $0) } ?? "?"
    let mem = summary.memoryUsedPercent.map { String(format: "%.1f%%", $0) } ?? "?"
    var out = ["as of \(summary.time)"]
    out.append("CPU busy \(cpu)   memory used \(mem) of \(summary.memoryTotalBytes.map(humanBytes) ?? "?") (available \(summary.memoryAvailableBytes.map(humanBytes) ?? "?"))   load \(summary.load1.map { String(format: "%.2f", $0) } ?? "?") \(summary.load5.map { String(format: "%.2f", $0) } ?? "?") \(summary.load15.map { String(format: "%.2f", $0) } ?? "?")   processes \(summary.processes.map(String.init) ?? "?")")
    out.append("")
    out += tableLines(["PID", "PROCESS", "CPU%", "RSS"], summary.topProcesses.map { [String($0.pid), $0.name, String(format: "%.1f", $0.cpuPercent), humanBytes($0.rssBytes)] })
    out.append("")
    out += tableLines(["MOUNTPOINT", "TYPE", "SIZE", "AVAIL", "USE%"], summary.filesystems.map {
        [$0.mountpoint, $0.fstype, humanBytes($0.sizeBytes), humanBytes($0.availBytes), String(format: "%.0f%%", $0.usedPercent)]
    })
    out.append("")
    out += tableLines(["INTERFACE", "RX/s", "TX/s"], summary.interfaces.map { [$0.device, humanBytes($0.receiveBytesPerSecond), humanBytes($0.transmitBytesPerSecond)] })
    return out
}

/// "completeness: 99.97 % of ticks stored over the last 23h 59m (2 gaps: 41 s not running, 3 s not stored)".
func completenessLine(_ c: TickCompleteness) -> String {
    var line = String(format: "completeness: %.2f %% of ticks stored over the last ", c.ratio * 100) + formatDuration(c.to - c.from)
    guard !c.gaps.isEmpty else { return line + " (no gaps)" }
    var byReason: [String: Int] = [:]
    for g in c.gaps { byReason[g.reason, default: 0] += g.missing }
    line += " (\(c.gaps.count) gap\(c.gaps.count == 1 ? "" : "s"): "
    line += byReason.sorted { $0.key < $1.key }.map { "\(formatDuration(Int64($0.value) * c.interval)) \($0.key)" }.joined(separator: ", ") + ")"
    return line
}

/// "collector runs: 47 of 51 collectors succeeded at every stored run; never: thermal, hwmon; not always:
/// processes 99.98 % of 86,400".
func collectorRunsLine(_ runs: [CollectorCompleteness]) -> String {
    let always = runs.filter { $0.succeeded == $0.runs }, never = runs.filter { $0.runs > 0 && $0.succeeded == 0 }
    let sometimes = runs.filter { $0.succeeded > 0 && $0.succeeded < $0.runs }
    var line = "collector runs: \(always.count) of \(runs.count) collectors succeeded at every stored run"
    if !never.isEmpty { line += "; never (no data or failing, see below): " + never.map(\.collector).joined(separator: ", ") }
    if !sometimes.isEmpty {
        line += "; not always: " + sometimes.sorted { $0.ratio < $1.ratio }.map { String(format: "%@ %.2f %% of %d", $0.collector, $0.ratio * 100, $0.runs) }.joined(separator: ", ")
    }
    return line
}

func formatDuration(_ ms: Int64) -> String {
    let s = ms / 1000
    let d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60
    return d > 0 ? "\(d)d \(h)h \(m)m" : h > 0 ? "\(h)h \(m)m" : m > 0 ? "\(m)m \(s % 60)s" : "\(s) s"
}
