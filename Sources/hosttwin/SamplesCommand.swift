import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct SamplesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samples",
        abstract: "Samples of one series, e.g. 'node_load1' or 'node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}'.",
        discussion: "Raw samples; with --step, min/max/avg/last/count per step-aligned bucket, read from the coarsest rollup tier that fits the step (1h, 1m, else raw)."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: ArgumentHelp("The series: METRIC{label=\"value\",...} with every label.", valueName: "SERIES")) var series: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Start time.", valueName: "TIME")) var from: String = "-5m"
    @Option(parsing: .unconditional, help: ArgumentHelp("End time.", valueName: "TIME")) var to: String = "now"
    @Option(help: ArgumentHelp("Bucket width, e.g. 1m, 1h: aggregate instead of raw samples.", valueName: "DURATION")) var step: String?

    func run() throws {
        let key: SeriesKey
        do { key = try SeriesKey.parse(series) } catch { throw CLIError("\(error)") }
        let a = try parseTime(from, "--from"), b = try parseTime(to, "--to")
        guard a <= b else { throw CLIError("--from is after --to") }
        let stepMs = try step.map { try TwinTime.parseDuration($0) }
        if let stepMs {
            guard stepMs > 0 else { throw CLIError("--step must be positive") }
            guard (b - a) / stepMs <= 100_000 else { throw CLIError("--step \(step!) makes more than 100000 points over that range; choose a larger step") }
        }
        let s = try store.openForReading()
        if let stepMs, let id = try s.seriesID(key) {
            let (points, tier) = try s.aggregate(id: id, from: a, to: b, step: stepMs)
            if output.json {
                try printJSON(AggregateJSON(series: key.description, tier: tier, stepMs: stepMs, points: points.map {
                    .init(t: TwinTime.rfc3339($0.t), timestamp: Double($0.t) / 1000, min: $0.min, max: $0.max, avg: $0.avg, sum: $0.sum, count: $0.count, last: $0.last)
                }))
                return
            }
            FileHandle.standardError.write(Data("\(points.count) points from tier \(tier)\n".utf8))
            printTable(["TIME", "MIN", "MAX", "AVG", "LAST", "COUNT"], points.map {
                [TwinTime.rfc3339($0.t), PrometheusText.formatValue($0.min), PrometheusText.formatValue($0.max), PrometheusText.formatValue($0.avg),
                 PrometheusText.formatValue($0.last), String(Int($0.count))]
            })
            return
        }
        guard let samples = try s.samples(key, from: a, to: b) else {
            let similar = try s.series(matching: NSRegularExpression.escapedPattern(for: key.metric)).prefix(5).map(\.key.description)
            throw CLIError("no stored series \(key)" + (similar.isEmpty ? "" : "; series of that metric: " + similar.joined(separator: ", ")))
        }
        if output.json {
            try printJSON(SamplesJSON(series: key.description, metric: key.metric, labels: key.labels,
                                      samples: samples.map { SamplesJSON.Point(t: TwinTime.rfc3339($0.0), timestamp: Double($0.0) / 1000, value: $0.1) }))
            return
        }
        for (t, v) in samples { print("\(TwinTime.rfc3339(t))  \(PrometheusText.formatValue(v))") }
    }
}

struct AggregateJSON: Encodable {
    struct Point: Encodable { var t: String; var timestamp: Double; var min, max, avg, sum, count, last: Double }
    var series: String
    var tier: String
    var stepMs: Int64
    var points: [Point]
    enum CodingKeys: String, CodingKey { case series, tier, stepMs = "step_ms", points }
}

struct SamplesJSON: Encodable {
    struct Point: Encodable { var t: String; var timestamp: Double; var value: Double }
    var series: String
    var metric: String
    var labels: Labels
    var samples: [Point]
}
