import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinStorage

/// `hosttwin bench history`: historical reconstruction against an independent generator — a store
/// written from a seeded synthetic host, then `state --at`, stored samples and PromQL checked tier by
/// tier against the generator's own truth, with `state --at` latency and the store's footprint.
struct BenchHistory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Historical reconstruction: a generated host's days written into a store, then read back and checked exactly.",
        discussion: """
        A seeded synthetic host (processes, ports, connections, mounts, packages, services and interfaces with \
        lifetimes and attribute changes; counters and gauges whose every value is a function of time) is written \
        tick by tick into a temporary store as `run` writes, with the default storage policy (raw samples kept 7 \
        days, then 1-minute and 1-hour rollups). Then, at --instants random moments: `state --at` against the \
        generator's truth per kind, stored samples per tier (raw, 1m, 1h) and PromQL per tier (raw, 1m) against \
        a reference evaluation of the same samples. Exact is defined per tier in docs/FIDELITY.md. Also: `state \
        --at` latency at instants of the last 7 days, and the directory's size by part (samples, rollups, state, \
        series index) per day and per observed sample.
        """
    )
    @Option(help: ArgumentHelp("Days of history.", valueName: "N")) var days = 30.0
    @Option(help: ArgumentHelp("Tick interval.", valueName: "DURATION")) var interval = "1s"
    @Option(help: ArgumentHelp("quiet or busy.", valueName: "PROFILE")) var profile = "quiet"
    @Option(help: ArgumentHelp("Random instants (and sample windows, and PromQL evaluations) checked.", valueName: "N")) var instants = 500
    @Option(help: "Seed of the generated host.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("Keep the store in this directory (default: a temporary one, removed).", valueName: "DIR")) var keep: String?
    @OptionGroup var output: OutputOptions

    struct Footprint: Encodable {
        var dirBytes: Int64
        var samplesObserved: Int64
        var bytesPerObservedSample: Double
        var bytesPerDay: Double
        var parts: [String: Int64]
        enum CodingKeys: String, CodingKey {
            case dirBytes = "dir_bytes", samplesObserved = "samples_observed", bytesPerObservedSample = "bytes_per_observed_sample"
            case bytesPerDay = "bytes_per_day", parts
        }
    }
    struct Latency: Encodable {
        var count: Int
        var p50: Double
        var p99: Double
        var max: Double
        enum CodingKeys: String, CodingKey { case count, p50 = "p50_ms", p99 = "p99_ms", max = "max_ms" }
    }
    struct Result: Encodable {
        var days: Double
        var intervalSeconds: Double
        var profile: String
        var lives: Int
        var versions: Int
        var series: Int
        var writeSeconds: Double
        var ticksPerSecond: Double
        var state: [String: HistoryCheck.Agreement]
        var samples: [String: HistoryCheck.Agreement]
        var promql: [String: HistoryCheck.Agreement]
        var stateAt: Latency
        var footprint: Footprint
        var exact: Bool
        enum CodingKeys: String, CodingKey {
            case days, intervalSeconds = "interval_s", profile, lives, versions, series, writeSeconds = "write_s", ticksPerSecond = "ticks_per_s"
            case state, samples, promql, stateAt = "state_at", footprint, exact
        }
    }

    func run() throws {
        let tick = try TwinTime.parseDuration(interval)
        guard tick >= 100, days > 0, instants > 0 else { throw CLIError("--interval must be at least 100ms, --days and --instants positive") }
        let chosen: SyntheticHistory.Profile
        switch profile {
        case "quiet": chosen = .quiet
        case "busy": chosen = .busy
        default: throw CLIError("--profile must be quiet or busy, not \(profile)")
        }
        let end = TwinTime.nowMillis() / 3_600_000 * 3_600_000
        let start = end - Int64(days * 86_400_000) / tick * tick
        let history = SyntheticHistory(profile: chosen, start: start, end: end, interval: tick, seed: seed)
        let counts = history.counts
        progress("generated \(counts.lives) entity lives with \(counts.versions) versions, \(history.series.count) series; writing \(String(format: "%g", days)) days at \(interval)")

        let dir = keep ?? NSTemporaryDirectory() + "hosttwin-bench-history-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let store = try TwinStore.open(dataDir: dir)
        let t0 = Date()
        var decile = 0
        try HistoryCheck.write(history, into: store) { share in
            guard Int(share * 10) > decile else { return }
            decile = Int(share * 10)
            progress(String(format: "  %3d%% after %.0f s", decile * 10, Date().timeIntervalSince(t0)))
        }
        let writeSeconds = Date().timeIntervalSince(t0)
        let ticks = (end - start) / tick
        progress(String(format: "written in %.1f s (%.0f ticks/s); checking %d instants", writeSeconds, Double(ticks) / writeSeconds, instants))

        let report = try HistoryCheck.check(history, store: store, instants: instants, seed: seed &+ 1)
        let sorted = report.stateAtMillis.sorted()
        let latency = Latency(count: sorted.count, p50: sorted.isEmpty ? 0 : sorted[sorted.count / 2],
                              p99: sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)], max: sorted.last ?? 0)
        let figures = try BenchStorage.measure(dir)
        let observed = ticks * Int64(history.series.count)
        var parts: [String: Int64] = [:]
        for (name, bytes) in figures.bytes where name.hasPrefix("table ") || name == "file wal/" {
            parts[Self.part(of: String(name.dropFirst(name.hasPrefix("table ") ? 6 : 5))), default: 0] += bytes
        }
        let footprint = Footprint(dirBytes: figures.dirBytes, samplesObserved: observed, bytesPerObservedSample: Double(figures.dirBytes) / Double(observed),
                                  bytesPerDay: Double(figures.dirBytes) / days, parts: parts)
        let all = Array(report.state.values) + Array(report.samples.values) + Array(report.promql.values)
        let result = Result(days: days, intervalSeconds: Double(tick) / 1000, profile: profile, lives: counts.lives, versions: counts.versions,
                            series: history.series.count, writeSeconds: writeSeconds, ticksPerSecond: Double(ticks) / writeSeconds,
                            state: report.state, samples: report.samples, promql: report.promql, stateAt: latency, footprint: footprint,
                            exact: all.allSatisfy { $0.exact == $0.compared })
        if output.json { try printJSON(result); return }
        print("\(String(format: "%g", days)) days of a \(profile) host at \(interval): \(counts.lives) entity lives, \(counts.versions) versions, \(history.series.count) series")
        for (title, table) in [("state --at", report.state), ("stored samples", report.samples), ("PromQL", report.promql)] {
            print("\(title):")
            for (name, a) in table.sorted(by: { $0.key < $1.key }) {
                print("  " + name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%9d compared, %9d exact (%.3f%%)", a.compared, a.exact, a.share * 100))
                for e in a.examples { print("      \(e)") }
            }
        }
        print(String(format: "state --at in the last 7 days (%d instants): p50 %.2f ms, p99 %.2f ms, max %.2f ms", latency.count, latency.p50, latency.p99, latency.max))
        print(String(format: "footprint: %@ (%@ per day), %.3f bytes per observed sample", humanBytes(Double(footprint.dirBytes)), humanBytes(footprint.bytesPerDay), footprint.bytesPerObservedSample))
        for (name, bytes) in parts.sorted(by: { $0.value > $1.value }) { print("  \(name): \(humanBytes(Double(bytes)))") }
        print(result.exact ? "every answer exact" : "NOT every answer exact")
    }

    /// Which part of the store a table or index belongs to.
    static func part(of table: String) -> String {
        if table.hasPrefix("chunks") || table == "wal/" { return "samples" }
        if table.contains("rollups") { return "rollups" }
        if table.hasPrefix("version") || table.hasPrefix("events") || table.contains("health") { return "state" }
        if table.hasPrefix("series") || table.hasPrefix("label_sets") || table.contains("metrics") || table.hasPrefix("metric_help") { return "series index" }
        return "other"
    }
}
