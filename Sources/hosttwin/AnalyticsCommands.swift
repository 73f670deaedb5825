import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin detect FILE.csv`: the streaming anomaly detector over a `timestamp,value` CSV, row by row.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Score a timestamp,value CSV (NAB's format) row by row with the streaming anomaly detector.",
        discussion: "Writes `timestamp,value,anomaly_score,alert` (alert = 1 at the detector's fixed threshold). Each row is scored before the next is read: no look-ahead."
    )
    @Argument(help: ArgumentHelp("The CSV to score (`-` for standard input is not supported).", valueName: "FILE")) var file: String

    func run() throws {
        let rows = try Forecasting.readCSV(file)
        var detector = NoveltyDetector()
        var out = "timestamp,value,anomaly_score,alert\n"
        let formatter = Forecasting.timeFormatter()
        for (t, v) in zip(rows.t, rows.v) {
            let s = detector.score(v)
            out += "\(formatter.string(from: Date(timeIntervalSince1970: Double(t)))),\(v),\(s),\(s >= NoveltyDetector.alertThreshold ? 1 : 0)\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// `hosttwin bench nab`: the detector over NAB's realAWSCloudwatch files as streams, scored by NAB's
/// rules at the detector's fixed threshold (and, for reference, at the best threshold).
struct BenchNAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nab",
        abstract: "NAB scores of the streaming detector on the realAWSCloudwatch files (fixed threshold), and its cost per sample.",
        discussion: "--nab is the folder holding data/ and labels/ (default ../shared/data/nab). --json prints {\"standard\": .., \"reward_low_FP_rate\": .., \"reward_low_FN_rate\": ..} plus details."
    )
    @Option(help: ArgumentHelp("NAB folder (data/, labels/).", valueName: "DIR")) var nab = "../shared/data/nab"
    @Option(help: ArgumentHelp("Category under data/.", valueName: "NAME")) var category = "realAWSCloudwatch"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let corpus: NABCorpus
        do { corpus = try NABCorpus.load(root: nab, category: category) } catch { throw CLIError("\(error) (pass --nab DIR)") }
        var scores: [[Double]] = []
        var samples = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        for f in corpus.files {
            var d = NoveltyDetector()
            var s = [Double]()
            s.reserveCapacity(f.values.count)
            for x in f.values { s.append(d.score(x)) }
            samples += f.values.count
            scores.append(s)
        }
        let nanosPerSample = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(max(samples, 1))
        var fixed: [String: Double] = [:]
        for p in NABScorer.Profile.all {
            fixed[p.name] = NABScorer.normalise(NABScorer.raw(corpus, scores: scores, threshold: NoveltyDetector.alertThreshold, profile: p),
                                                windows: corpus.windowCount, profile: p)
        }
        let best = NABScorer.score(corpus, scores: scores)
        if json {
            var obj: [String: Any] = fixed
            obj["threshold"] = NoveltyDetector.alertThreshold
            obj["best_threshold_scores"] = Dictionary(uniqueKeysWithValues: best.map { ($0.profile, $0.score) })
            obj["files"] = corpus.files.count
            obj["windows"] = corpus.windowCount
            obj["ns_per_sample"] = nanosPerSample
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("NAB \(category): \(corpus.files.count) files, \(corpus.windowCount) windows, \(samples) samples; detector threshold \(NoveltyDetector.alertThreshold) (fixed)")
        for p in NABScorer.Profile.all {
            let b = best.first { $0.profile == p.name }!
            print("  " + p.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%6.2f   (best threshold %.3f: %.2f)", fixed[p.name]!, b.threshold, b.score))
        }
        print(String(format: "  cost: %.1f ns per sample", nanosPerSample))
    }
}

/// `hosttwin forecast`: where series are heading — a PromQL expression over the store, or a CSV.
struct ForecastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Forecast stored series (a PromQL expression) or a timestamp,value CSV, with 80 % and 95 % intervals.",
        discussion: """
        hosttwin forecast EXPR --horizon 24h [--history 7d] [--below X]: the expression is read over --history (about \
        2,000 points; rollup tiers serve long histories), each series forecast --horizon ahead; --below X adds when \
        the series is expected to fall to X (expected, earliest and latest of the 95 % band, or "not within horizon").

        hosttwin forecast --csv FILE [--train-rows N] --horizon STEPS: fits on the first N rows and writes \
        `timestamp,forecast,lo80,hi80,lo95,hi95` for the next STEPS steps.

        The model (seasonal naive, robust linear trend, Holt / Holt-Winters with damped trend and daily seasonality \
        when two days of history exist) is chosen automatically on each series' own recent history.
        """
    )
    @Argument(help: ArgumentHelp("A PromQL expression (not with --csv).", valueName: "EXPR")) var expr: String?
    @Option(help: ArgumentHelp("A CSV to forecast instead of stored series.", valueName: "FILE")) var csv: String?
    @Option(help: ArgumentHelp("Rows of the CSV to fit on (default: all).", valueName: "N")) var trainRows: Int?
    @Option(help: ArgumentHelp("How far ahead: a duration for EXPR (24h), a number of steps for --csv.", valueName: "HORIZON")) var horizon: String
    @Option(help: ArgumentHelp("History to fit on (EXPR only).", valueName: "DURATION")) var history = "7d"
    @Option(help: ArgumentHelp("Report when each series falls to this value (EXPR only).", valueName: "X")) var below: Double?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        if let csv { try forecastCSV(csv); return }
        guard let expr else { throw CLIError("give a PromQL expression, or --csv FILE") }
        let parsed: Expr
        do { parsed = try PromQLParser.parse(expr) } catch { throw CLIError("\(error)") }
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let forecasts: [SeriesForecast]
        do {
            forecasts = try QueryForecaster.forecast(engine: engine, expr: parsed, now: TwinTime.nowMillis(), history: try TwinTime.parseDuration(history),
                                                     horizon: try TwinTime.parseDuration(horizon), exhaustionBelow: below)
        } catch let e as PromQLError { throw CLIError("\(e)") } catch let e as TwinError { throw CLIError("\(e)") }
        if output.json { try printJSON(forecasts.map(SeriesForecastJSON.init)); return }
        if forecasts.isEmpty { print("(no series: nothing stored for \(expr) in the last \(history))") }
        for f in forecasts {
            print("\(QueryCommand.name(f.labels))  now \(PromNumber.format(f.last.value))  model: \(f.model)")
            for i in Forecasting.milestones(f.points.count) {
                let p = f.points[i]
                print("  \(TwinTime.rfc3339(f.last.t + f.step * Int64(i + 1)))  \(PromNumber.format(p.mean))  80 % [\(PromNumber.format(p.lo80)), \(PromNumber.format(p.hi80))]  95 % [\(PromNumber.format(p.lo95)), \(PromNumber.format(p.hi95))]")
            }
            if let e = f.exhaustion { print("  reaches \(PromNumber.format(e.threshold)): \(Forecasting.describe(e, now: f.last.t))") }
        }
    }

    private func forecastCSV(_ path: String) throws {
        guard expr == nil else { throw CLIError("give either EXPR or --csv, not both") }
        guard let steps = Int(horizon), steps > 0, steps <= 1_000_000 else { throw CLIError("with --csv, --horizon is a number of steps (1 to 1,000,000)") }
        let rows = try Forecasting.readCSV(path)
        let n = trainRows ?? rows.t.count
        guard n >= 3, n <= rows.t.count else { throw CLIError("--train-rows must be between 3 and the file's \(rows.t.count) rows") }
        let step = Forecasting.step(rows.t[..<n])
        let (model, points) = Forecaster.forecast(Array(rows.v[..<n]), horizon: steps, period: Forecasting.dailyPeriod(step: step))
        FileHandle.standardError.write(Data("model: \(model)\n".utf8))
        var out = "timestamp,forecast,lo80,hi80,lo95,hi95\n"
        let fmt = Forecasting.timeFormatter()
        for (h, p) in points.enumerated() {
            let t = rows.t[n - 1] + step * Int64(h + 1)
            out += "\(fmt.string(from: Date(timeIntervalSince1970: Double(t)))),\(p.mean),\(p.lo80),\(p.hi80),\(p.lo95),\(p.hi95)\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

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

/// `hosttwin bench forecast`: rolling-origin evaluation, 24 h ahead, on NAB's 5-minute AWS series or on
/// this host's own stored series.
struct BenchForecast: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Forecast accuracy (MASE, sMAPE, interval coverage), a season ahead from rolling origins, on NAB's realAWSCloudwatch series or on this host's stored series; HostTwin beside seasonal naive.",
        discussion: """
        NAB (default): origins are the last --origins days of each file, one forecast of a day (288 steps at 5 \
        minutes) from each. With --data-dir, the host's CPU busy %, available memory, load, network and disk \
        throughput and root filesystem space are read from the store at --step (1-minute rollups behind long \
        histories) and forecast one --season ahead from each of the last --origins seasons; at least two seasons \
        must be stored (two days by default). MASE is scaled by the in-sample seasonal naive error of the \
        training part.
        """
    )
    @Option(help: ArgumentHelp("NAB folder (data/, labels/).", valueName: "DIR")) var nab = "../shared/data/nab"
    @Option(help: ArgumentHelp("Evaluate on this store's host series instead of NAB.", valueName: "DIR")) var dataDir: String?
    @Option(help: ArgumentHelp("Step the host series are read at (with --data-dir).", valueName: "DURATION")) var step = "5m"
    @Option(help: ArgumentHelp("Season and forecast horizon (with --data-dir).", valueName: "DURATION")) var season = "1d"
    @Option(help: "Forecast origins per series (one per season, counted back from the end).") var origins = 3
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var series: String; var model: String; var mase: Double; var smape: Double; var naiveMase: Double; var naiveSmape: Double
        var coverage80: Double; var coverage95: Double
    }

    /// The host series evaluated with --data-dir.
    static let hostSeries: [(String, String)] = [
        ("cpu busy %", #"100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])))"#),
        ("memory available", "node_memory_MemAvailable_bytes"),
        ("load1", "node_load1"),
        ("network received", #"sum(rate(node_network_receive_bytes_total{device!="lo"}[5m]))"#),
        ("disk written", "sum(rate(node_disk_written_bytes_total[5m]))"),
        ("root filesystem available", #"node_filesystem_avail_bytes{mountpoint="/"}"#),
    ]

    func run() throws {
        var rows: [Row] = []
        if let dataDir {
            let stepMs = try TwinTime.parseDuration(step), seasonMs = try TwinTime.parseDuration(season)
            guard stepMs >= 1000, seasonMs >= 3 * stepMs else { throw CLIError("--step must be at least 1s and --season at least three steps") }
            let store = try TwinStore.open(dataDir: dataDir, readOnly: true)
            guard let (first, last) = try store.sampleTimeRange(), last - first >= 2 * seasonMs else {
                throw CLIError("the store holds less than two seasons (\(season)) of data: nothing to evaluate")
            }
            let source = StoreSampleSource(store: store)
            let engine = PromQLEngine(source: stepMs >= 60_000 ? source.minuteResolution : source)
            let end = last / stepMs * stepMs, m = Int(seasonMs / stepMs)
            for (name, expr) in Self.hostSeries {
                guard case .matrix(let series) = try engine.range(try PromQLParser.parse(expr), start: end - (last - first) / stepMs * stepMs, end: end, step: stepMs),
                      let s = series.first else { continue }
                // Gaps (the twin was stopped) are carried over from the last value before them.
                var values: [Double] = [], t = s.points[0].0, k = 0
                while t <= end {
                    while k + 1 < s.points.count, s.points[k + 1].0 <= t { k += 1 }
                    values.append(s.points[k].1)
                    t += stepMs
                }
                if let row = Self.evaluate(name, values, period: m, horizon: m, origins: origins, minimumTraining: m + 1) { rows.append(row) }
            }
        } else {
            let corpus: NABCorpus
            do { corpus = try NABCorpus.load(root: nab, category: "realAWSCloudwatch") } catch { throw CLIError("\(error) (pass --nab DIR)") }
            for f in corpus.files {
                let m = Forecasting.dailyPeriod(step: Forecasting.step(f.timestamps[...]))
                if let row = Self.evaluate(f.name, f.values, period: m, horizon: m, origins: origins, minimumTraining: 2 * m + 1) { rows.append(row) }
            }
        }
        guard !rows.isEmpty else { throw CLIError("no series long enough to evaluate") }
        let mean = { (k: KeyPath<Row, Double>) in rows.reduce(0) { $0 + $1[keyPath: k] } / Double(max(rows.count, 1)) }
        if json {
            struct Out: Encodable {
                var series: [Row]; var meanMase: Double; var meanSmape: Double; var naiveMeanMase: Double; var naiveMeanSmape: Double
                var coverage80: Double; var coverage95: Double
            }
            try printJSON(Out(series: rows, meanMase: mean(\.mase), meanSmape: mean(\.smape), naiveMeanMase: mean(\.naiveMase), naiveMeanSmape: mean(\.naiveSmape),
                              coverage80: mean(\.coverage80), coverage95: mean(\.coverage95)))
            return
        }
        printTable(["SERIES", "MASE", "sMAPE", "NAIVE MASE", "NAIVE sMAPE", "MODEL (last origin)"], rows.map {
            [String($0.series.split(separator: "/").last ?? ""), String(format: "%.3f", $0.mase), String(format: "%.1f", $0.smape),
             String(format: "%.3f", $0.naiveMase), String(format: "%.1f", $0.naiveSmape), $0.model]
        })
        print(String(format: "mean MASE %.3f (seasonal naive %.3f), mean sMAPE %.1f (seasonal naive %.1f); actuals inside the 80 %% intervals %.0f %%, the 95 %% intervals %.0f %%",
                     mean(\.mase), mean(\.naiveMase), mean(\.smape), mean(\.naiveSmape), mean(\.coverage80) * 100, mean(\.coverage95) * 100))
    }

    /// One series forecast `horizon` steps ahead from each of the last `origins` periods, beside the
    /// seasonal naive forecast; nil when no origin leaves `minimumTraining` values to train on.
    static func evaluate(_ name: String, _ values: [Double], period m: Int, horizon: Int, origins: Int, minimumTraining: Int) -> Row? {
        var mase = 0.0, smape = 0.0, nMase = 0.0, nSmape = 0.0, count = 0, in80 = 0, in95 = 0, scored = 0
        var model = ""
        for k in (1...max(origins, 1)).reversed() {
            let origin = values.count - k * m
            guard origin >= minimumTraining else { continue }
            let train = Array(values[..<origin]), actual = Array(values[origin..<min(origin + horizon, values.count)])
            let (chosen, points) = Forecaster.forecast(train, horizon: actual.count, period: m)
            model = chosen.description
            let naive = (0..<actual.count).map { train[train.count - m + ($0 % m)] }
            mase += ForecastAccuracy.mase(actual: actual, forecast: points.map(\.mean), training: train, period: m)
            smape += ForecastAccuracy.smape(actual: actual, forecast: points.map(\.mean))
            nMase += ForecastAccuracy.mase(actual: actual, forecast: naive, training: train, period: m)
            nSmape += ForecastAccuracy.smape(actual: actual, forecast: naive)
            for (a, p) in zip(actual, points) {
                if a >= p.lo80 && a <= p.hi80 { in80 += 1 }
                if a >= p.lo95 && a <= p.hi95 { in95 += 1 }
            }
            scored += actual.count
            count += 1
        }
        guard count > 0 else { return nil }
        let c = Double(count)
        return Row(series: name, model: model, mase: mase / c, smape: smape / c, naiveMase: nMase / c, naiveSmape: nSmape / c,
                   coverage80: Double(in80) / Double(scored), coverage95: Double(in95) / Double(scored))
    }
}

/// Helpers shared by the forecast commands.
enum Forecasting {
    /// A few indices to print of `n` forecast steps: about every eighth, and the last.
    static func milestones(_ n: Int) -> [Int] {
        guard n > 0 else { return [] }
        let every = max(1, n / 8)
        return Array(Set(stride(from: every - 1, to: n, by: every)).union([n - 1])).sorted()
    }

    /// "in 3h 20m (2026-11-30T04:00:00Z; 95 %: 1h 10m to 9h)" or "not within horizon".
    static func describe(_ e: Exhaustion, now: Int64) -> String {
        guard let expected = e.expected ?? e.earliest else { return "not within horizon" }
        let range = "95 %: \(e.earliest.map { formatDuration($0 - now) } ?? "-") to \(e.latest.map { formatDuration($0 - now) } ?? "beyond the horizon")"
        return "\(e.expected == nil ? "possibly " : "")in \(formatDuration(expected - now)) (\(TwinTime.rfc3339(expected)); \(range))"
    }

    /// The median spacing of timestamps (seconds), at least 1.
    static func step(_ t: ArraySlice<Int64>) -> Int64 {
        guard t.count > 1 else { return 1 }
        let d = zip(t.dropFirst(), t).map { $0 - $1 }.sorted()
        return max(1, d[d.count / 2])
    }

    /// A `timestamp,value` CSV (NAB's format), its errors as the CLI's.
    static func readCSV(_ path: String) throws -> (t: [Int64], v: [Double]) {
        do { return try NABCorpus.readCSV(path) } catch { throw CLIError("\(error)") }
    }

    /// Steps in a day at `step` seconds.
    static func dailyPeriod(step: Int64) -> Int { Int(86_400 / max(step, 1)) }

    static func timeFormatter() -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate, .withSpaceBetweenDateAndTime, .withTime, .withColonSeparatorInTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f
    }
}

/// `hosttwin anomalies`: what looked anomalous on this host, and early warnings.
struct AnomaliesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anomalies",
        abstract: "Anomalies of the stored series in a window, the host-level anomaly rate, and early warnings of common failures.",
        discussion: """
        Every series is streamed minute by minute (gauges as their mean, counters as their rate) through the streaming \
        detector, which first learns from --history before the window; alerts inside the window are listed with the \
        series most anomalous lately, the times the host turned anomalous (5 % of its series alerting within 10 \
        minutes), and warnings: sustained PSI pressure, error counters starting to rise, memory-leak suspects, \
        filesystems on course to fill within a day, processes restarting in a loop.
        """
    )
    @Option(parsing: .unconditional, help: ArgumentHelp("Start of the window.", valueName: "TIME")) var since = "-6h"
    @Option(parsing: .unconditional, help: ArgumentHelp("End of the window.", valueName: "TIME")) var to = "now"
    @Option(help: ArgumentHelp("History the detector learns from before the window.", valueName: "DURATION")) var history = "24h"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let a = try parseTime(since, "--since"), b = try parseTime(to, "--to")
        guard a < b else { throw CLIError("--since must be before --to") }
        let report: AnomalyReport
        do { report = try AnomalyScan.run(store: try store.openForReading(), to: b, window: b - a, history: try TwinTime.parseDuration(history)) } catch let e as TwinError {
            throw CLIError("\(e)")
        }
        if output.json { try printJSON(report); return }
        let peak = report.rate.max { $0.rate < $1.rate }
        print("\(report.series) series, \(report.from) → \(report.to): \(report.alerts.count) alerts; peak anomaly rate \(String(format: "%.1f %%", (peak?.rate ?? 0) * 100))\(peak.map { " at \($0.time)" } ?? "")")
        if !report.hostAnomalous.isEmpty { print("host turned anomalous at: \(report.hostAnomalous.joined(separator: ", "))") }
        print("")
        printTable(["LAST ALERT", "SERIES", "SCORE", "VALUE"], report.mostAnomalous.map { [$0.time, $0.series, String(format: "%.2f", $0.score), PromNumber.format($0.value)] })
        print("")
        if report.warnings.isEmpty { print("no early warnings") } else {
            printTable(["WARNING", "SUBJECT", "EVIDENCE"], report.warnings.map { [$0.kind, String($0.subject.prefix(60)), $0.evidence] })
        }
    }
}

/// `hosttwin maintenance-window`: the quietest slot ahead.
struct MaintenanceWindowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance-window",
        abstract: "The quietest slot of --duration within --within, from the forecasts of CPU, network and disk activity.",
        discussion: "Each signal is forecast from --history and taken relative to its peak over that history; the slot with the lowest mean of the three is reported with the load expected in it."
    )
    @Option(help: ArgumentHelp("Length of the slot.", valueName: "DURATION")) var duration = "1h"
    @Option(help: ArgumentHelp("How far ahead to look.", valueName: "DURATION")) var within = "7d"
    @Option(help: ArgumentHelp("History the forecasts learn from.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let w: MaintenanceWindow?
        do {
            w = try Advisor.maintenanceWindow(engine: engine, now: TwinTime.nowMillis(), duration: try TwinTime.parseDuration(duration),
                                              within: try TwinTime.parseDuration(within), history: try TwinTime.parseDuration(history))
        } catch let e as PromQLError { throw CLIError("\(e)") } catch let e as TwinError { throw CLIError("\(e)") }
        guard let w else { throw CLIError("not enough stored activity to forecast (run `hosttwin run` longer, or shorten --history)") }
        if output.json { try printJSON(w); return }
        print("quietest \(duration) within \(within): \(w.start) → \(w.end)  (relative load \(String(format: "%.2f", w.score)) of the history's peaks)")
        printTable(["SIGNAL", "EXPECTED", "HISTORY PEAK"], w.loads.map { [$0.signal, PromNumber.format(($0.expected * 1000).rounded() / 1000), PromNumber.format(($0.historyPeak * 1000).rounded() / 1000)] })
        print(w.basis)
    }
}

/// `hosttwin advise`: recommendations grounded in the stored history.
struct AdviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advise",
        abstract: "Recommendations from the stored history, each with its evidence: over- or under-provisioned CPU and memory, swap thrash, memory-leak suspects, restart loops, filesystems filling.",
        discussion: "CPU: 95th percentile of busy below 20 % (over-provisioned) or above 85 % (saturated). Memory: used below 30 % or above 90 %. Swap: over 100 pages/s in and out. The rest comes from the early warnings of `hosttwin anomalies` over the last day."
    )
    @Option(help: ArgumentHelp("History to judge from.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let advice: [Advice]
        do { advice = try Advisor.advise(store: try store.openForReading(), now: TwinTime.nowMillis(), history: try TwinTime.parseDuration(history)) } catch let e as PromQLError {
            throw CLIError("\(e)")
        } catch let e as TwinError { throw CLIError("\(e)") }
        if output.json { try printJSON(advice); return }
        if advice.isEmpty { print("nothing to advise from the last \(history)"); return }
        printTable(["TOPIC", "RECOMMENDATION", "EVIDENCE"], advice.map { [$0.topic, $0.recommendation, $0.evidence] })
    }
}
