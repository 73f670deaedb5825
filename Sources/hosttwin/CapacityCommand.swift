import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin capacity`: time to exhaustion of every filesystem (space and inodes) and of memory.
struct CapacityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity",
        abstract: "When each filesystem (space, inodes) and memory is expected to run out, from forecasts of the stored history.",
        discussion: "Reads node_filesystem_avail_bytes, node_filesystem_files_free (real filesystems) and node_memory_MemAvailable_bytes over --history, forecasts --horizon ahead and reports when each reaches 0: expected, and the earliest and latest of the 95 % band; `not within HORIZON` otherwise."
    )
    @Option(help: ArgumentHelp("History to fit on.", valueName: "DURATION")) var history = "7d"
    @Option(help: ArgumentHelp("How far ahead to look.", valueName: "DURATION")) var horizon = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    static let resources: [(String, String)] = [
        ("filesystem space", #"node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|proc|sysfs|cgroup2?|autofs"}"#),
        ("filesystem inodes", #"node_filesystem_files_free{fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|proc|sysfs|cgroup2?|autofs"}"#),
        ("memory", "node_memory_MemAvailable_bytes"),
    ]

    func run() throws {
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let h = try TwinTime.parseDuration(history), z = try TwinTime.parseDuration(horizon)
        var rows: [(String, SeriesForecast)] = []
        for (name, q) in Self.resources {
            do {
                for f in try QueryForecaster.forecast(engine: engine, expr: try PromQLParser.parse(q), now: TwinTime.nowMillis(), history: h, horizon: z, exhaustionBelow: 0) {
                    rows.append((name, f))
                }
            } catch let e as PromQLError { throw CLIError("\(e)") }
        }
        if output.json {
            struct Row: Encodable { var resource: String; var forecast: SeriesForecastJSON }
            try printJSON(rows.map { Row(resource: $0.0, forecast: SeriesForecastJSON($0.1)) })
            return
        }
        if rows.isEmpty { print("(no history to forecast from in the last \(history), read at whole minutes: let `hosttwin run` collect longer, or widen --history)"); return }
        printTable(["RESOURCE", "OF", "NOW", "RUNS OUT", "MODEL"], rows.map { name, f in
            let of = f.labels["mountpoint"] ?? f.labels["device"] ?? "host"
            let runsOut = f.exhaustion.map { Forecasting.describe($0, now: f.last.t) } ?? "-"
            return [name, of, PromNumber.format(f.last.value), runsOut == "not within horizon" ? "not within \(horizon)" : runsOut, f.model]
        })
    }
}
