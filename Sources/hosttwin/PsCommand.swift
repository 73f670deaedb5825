import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "Processes now, or as they were at --at TIME.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Include kernel threads.") var kernel = false

    func run() throws {
        let cols = [
            Column(header: "PID", attribute: "pid"), Column(header: "PPID", attribute: "ppid"),
            Column(header: "USER", attribute: "user"), Column(header: "STATE", attribute: "state"),
            Column(header: "CPU%", attribute: "cpu_percent") { $0.map { v in String(format: "%.1f", (v.doubleValue ?? 0)) } ?? "-" },
            Column(header: "RSS", attribute: "rss_bytes") { $0.flatMap(\.doubleValue).map(humanBytes) ?? "-" },
            Column(header: "START", attribute: "start_time"), Column(header: "COMMAND", attribute: "command"),
        ]
        let kernel = self.kernel
        try showEntities(.processes, columns: cols, store: store, at: at, output: output, sort: { int($0, "pid") < int($1, "pid") },
                         extra: { s, t, _ in try processFigures(s, t) }, filter: kernel ? nil : { $0.attributes["kernel_thread"] != .bool(true) })
    }
}

/// CPU % and RSS of each process at `t` from its series, keyed by pid (`HOST/pid` at a hub).
func processFigures(_ s: TwinStore, _ t: Int64) throws -> [String: [String: AttributeValue]] {
    let (series, latest, previous) = try s.latestValues(at: t, lookback: 10_000,
                                                        metrics: ["hosttwin_process_cpu_seconds_total", "hosttwin_process_resident_memory_bytes"])
    var byPid: [String: [String: AttributeValue]] = [:]
    for (id, (t1, v1)) in latest {
        guard let info = series[id], let label = info.key.labels["pid"] else { continue }
        let pid = info.key.labels["host"].map { $0 + "/" + label } ?? label
        if info.key.metric == "hosttwin_process_resident_memory_bytes" {
            byPid[pid, default: [:]]["rss_bytes"] = .double(v1)
        } else if let (t0, v0) = previous[id], t1 > t0 {
            byPid[pid, default: [:]]["cpu_percent"] = .double(max(0, (v1 - v0) / (Double(t1 - t0) / 1000) * 100))
        }
    }
    return byPid
}
