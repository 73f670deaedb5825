import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

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
    @Option(help: ArgumentHelp("NAB category whose series are forecast (realAWSCloudwatch: 14 days at 5 min; realTweets: 8 weeks at 5 min; realAdExchange: 10 weeks at 1 h).", valueName: "NAME")) var category = "realAWSCloudwatch"
    @Option(help: ArgumentHelp("Evaluate on this store's host series instead of NAB.", valueName: "DIR")) var dataDir: String?
    @Option(help: ArgumentHelp("Step the host series are read at (with --data-dir).", valueName: "DURATION")) var step = "5m"
    @Option(help: ArgumentHelp("Season and forecast horizon (with --data-dir).", valueName: "DURATION")) var season = "1d"
    @Option(help: "Forecast origins per series (one per season, counted back from the end).") var origins = 3
    @Option(help: ArgumentHelp("Interval rule: widest (the product's), median or pooled stretch errors.", valueName: "RULE")) var intervals = "widest"
    @Option(help: ArgumentHelp("Widen (or narrow) the rule's intervals by this factor.", valueName: "FACTOR")) var intervalScale = 1.0
    @Option(help: ArgumentHelp("Also forecast from only the last N seasons before each origin, for each N given (the accuracy against training length).", valueName: "N,N,...")) var trainingSeasons: String?
    @Flag(help: "Choose the interval rule and a width factor (0.7-1.3) for each series on the other series (leave-one-series-out: the lowest mean scaled Winkler score among the choices covering within 3 points of nominal there) and report that.") var selectIntervals = false
    @Option(help: ArgumentHelp("Forecast this far ahead from each origin (default: one season; e.g. 30d for capacity projections).", valueName: "DURATION")) var horizon: String?
    @Option(help: ArgumentHelp("NAB: average the series to this step first (1h: as the store's hour tier serves long histories).", valueName: "DURATION")) var resample: String?
    @Flag(help: "Also forecast with the daily season alone and without level shifts, and show per series which wins (MASE).") var ablation = false
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var series: String; var model: String; var mase: Double; var smape: Double; var naiveMase: Double; var naiveSmape: Double
        var coverage80: Double; var coverage95: Double
        /// Mean scaled Winkler scores of the 80 % and 95 % intervals (lower is better), and WAPE.
        var winkler80: Double; var winkler95: Double; var wape: Double
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
        guard let rule = Forecaster.IntervalRule(rawValue: intervals) else {
            throw CLIError("unknown --intervals \(intervals); known: \(Forecaster.IntervalRule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard intervalScale > 0, intervalScale.isFinite else { throw CLIError("--interval-scale takes a factor above 0, e.g. 1.2") }
        // The series to evaluate: name, values, period, least training.
        var tasks: [Task] = []
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
                // Gaps (the twin was stopped) are filled as production forecasts fill them.
                let values = ForecastHistory.regular(s.points, step: stepMs, period: m)
                tasks.append(Task(name: name, values: values, period: m, minimumTraining: m + 1))
            }
        } else {
            let corpus: NABCorpus
            do { corpus = try NABCorpus.load(root: nab, category: category) } catch { throw CLIError("\(error) (pass --nab DIR and a --category of it)") }
            let every = try resample.map { try TwinTime.parseDuration($0) / 1000 }
            for f in corpus.files {
                let step = Forecasting.step(f.timestamps[...])
                // Missing rows are filled as production fills gaps (a few in realTweets and realAdExchange).
                var values = ForecastHistory.regular(zip(f.timestamps, f.values).map { ($0 * 1000, $1) }, step: step * 1000, period: Forecasting.dailyPeriod(step: step))
                var m = Forecasting.dailyPeriod(step: step)
                if let every {
                    guard every >= step, every % step == 0, 86_400 % every == 0 else { throw CLIError("--resample must be a multiple of the data's step (\(step) s) that divides a day") }
                    let k = Int(every / step)
                    values = stride(from: 0, to: values.count - k + 1, by: k).map { values[$0..<($0 + k)].reduce(0, +) / Double(k) }
                    m = Forecasting.dailyPeriod(step: every)
                }
                tasks.append(Task(name: f.name, values: values, period: m, minimumTraining: 2 * m + 1))
            }
        }
        // The horizon in steps of each task (a season unless --horizon).
        let horizonSeasons = try horizon.map { Double(try TwinTime.parseDuration($0)) / Double(try TwinTime.parseDuration(dataDir == nil ? "1d" : season)) }
        func steps(_ t: Task) -> Int { horizonSeasons.map { max(1, Int((Double(t.period) * $0).rounded())) } ?? t.period }
        /// Rows per width factor (`[factor][series]`), from one set of forecasts.
        func evaluateAll(_ rule: Forecaster.IntervalRule, widthScales: [Double], models: Models = .all) -> [[Row]] {
            let perTask = tasks.compactMap { Self.evaluate($0.name, $0.values, period: $0.period, horizon: steps($0), origins: origins, minimumTraining: $0.minimumTraining,
                                                           intervals: rule, widthScales: widthScales, models: models) }
            return widthScales.indices.map { j in perTask.map { $0[j] } }
        }
        func evaluateAll(_ rule: Forecaster.IntervalRule, models: Models = .all) -> [Row] { evaluateAll(rule, widthScales: [intervalScale], models: models)[0] }
        var rows = evaluateAll(rule)
        var selection: [String: Int] = [:]
        if selectIntervals {
            // Leave one series out: each series gets, among the rules and width factors (0.7 to 1.3 times
            // the rule's half-widths) whose mean coverage on the other series is within 3 points of 80 %
            // and of 95 %, the one with the lowest mean scaled Winkler score (80 % and 95 % together) on
            // them; the lowest score of all when none covers so.
            let scales = Array(stride(from: 0.7, through: 1.3001, by: 0.05))
            let choices = Forecaster.IntervalRule.allCases.flatMap { r in scales.map { (rule: r, scale: $0) } }
            let byChoice = Forecaster.IntervalRule.allCases.flatMap { evaluateAll($0, widthScales: scales) }
            func others(_ k: Int, _ i: Int, _ f: (Row) -> Double) -> Double {
                let r = byChoice[k]
                return (r.reduce(0.0) { $0 + f($1) } - f(r[i])) / Double(max(r.count - 1, 1))
            }
            rows = byChoice[0].indices.map { i in
                let cost = byChoice.indices.map { k in others(k, i) { $0.winkler80 + $0.winkler95 } }
                let calibrated = byChoice.indices.filter { k in abs(others(k, i, \.coverage80) - 0.8) <= 0.03 && abs(others(k, i, \.coverage95) - 0.95) <= 0.03 }
                let best = (calibrated.isEmpty ? Array(byChoice.indices) : calibrated).min { cost[$0] < cost[$1] }!
                selection[String(format: "%@ × %.2f", choices[best].rule.rawValue, choices[best].scale), default: 0] += 1
                return byChoice[best][i]
            }
        }
        guard !rows.isEmpty else { throw CLIError("no series long enough to evaluate") }
        func average(_ rows: [Row], _ k: KeyPath<Row, Double>) -> Double { rows.reduce(0) { $0 + $1[keyPath: k] } / Double(max(rows.count, 1)) }
        let mean = { (k: KeyPath<Row, Double>) in average(rows, k) }
        var curve: [CurvePoint] = []
        for text in (trainingSeasons ?? "").split(separator: ",") {
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 1 else { throw CLIError("--training-seasons takes whole numbers of seasons ≥ 1, e.g. 1,3,7") }
            let r = tasks.compactMap { Self.evaluate($0.name, $0.values, period: $0.period, horizon: steps($0), origins: origins, minimumTraining: $0.minimumTraining,
                                                     intervals: rule, trainingLimit: n * $0.period)?[0] }
            let sorted = r.map(\.mase).sorted()
            curve.append(CurvePoint(seasons: n, mase: average(r, \.mase), medianMase: sorted.isEmpty ? .nan : sorted[sorted.count / 2], coverage80: average(r, \.coverage80), coverage95: average(r, \.coverage95),
                                    winkler80: average(r, \.winkler80), winkler95: average(r, \.winkler95)))
        }
        var ablationRows: [AblationRow] = []
        if ablation {
            let daily = evaluateAll(rule, models: .daily), weekly = evaluateAll(rule, models: .weekly)
            let full = Dictionary(rows.map { ($0.series, $0) }, uniquingKeysWith: { a, _ in a })
            ablationRows = zip(daily, weekly).compactMap { d, w in
                full[d.series].map { AblationRow(series: d.series, daily: d.mase, weekly: w.mase, all: $0.mase, model: $0.model) }
            }
        }
        if json {
            struct Out: Encodable {
                var series: [Row]; var meanMase: Double; var meanSmape: Double; var naiveMeanMase: Double; var naiveMeanSmape: Double
                var coverage80: Double; var coverage95: Double; var winkler80: Double; var winkler95: Double; var wape: Double
                var intervals: String; var selected: [String: Int]?; var trainingCurve: [CurvePoint]; var ablation: [AblationRow]?
            }
            try printJSON(Out(series: rows, meanMase: mean(\.mase), meanSmape: mean(\.smape), naiveMeanMase: mean(\.naiveMase), naiveMeanSmape: mean(\.naiveSmape),
                              coverage80: mean(\.coverage80), coverage95: mean(\.coverage95), winkler80: mean(\.winkler80), winkler95: mean(\.winkler95), wape: mean(\.wape),
                              intervals: selectIntervals ? "selected per series on the others" : rule.rawValue, selected: selectIntervals ? selection : nil, trainingCurve: curve,
                              ablation: ablation ? ablationRows : nil))
            return
        }
        printTable(["SERIES", "MASE", "sMAPE", "NAIVE MASE", "NAIVE sMAPE", "MODEL (last origin)"], rows.map {
            [String($0.series.split(separator: "/").last ?? ""), String(format: "%.3f", $0.mase), String(format: "%.1f", $0.smape),
             String(format: "%.3f", $0.naiveMase), String(format: "%.1f", $0.naiveSmape), $0.model]
        })
        print(String(format: "mean MASE %.3f (seasonal naive %.3f), mean sMAPE %.1f (seasonal naive %.1f); actuals inside the 80 %% intervals %.1f %%, the 95 %% intervals %.1f %%; scaled Winkler 80 %% %.2f, 95 %% %.2f; 1 - WAPE %.3f",
                     mean(\.mase), mean(\.naiveMase), mean(\.smape), mean(\.naiveSmape), mean(\.coverage80) * 100, mean(\.coverage95) * 100,
                     mean(\.winkler80), mean(\.winkler95), 1 - mean(\.wape)))
        if selectIntervals { print("interval rule and width chosen on the other series: " + selection.sorted { $0.key < $1.key }.map { "\($0.key) for \($0.value)" }.joined(separator: ", ")) }
        if !ablationRows.isEmpty {
            print("")
            printTable(["SERIES", "DAILY SEASON", "+ WEEKLY", "+ LEVEL SHIFTS", "BEST", "MODEL (last origin)"], ablationRows.map { a in
                let best = [("daily", a.daily), ("weekly", a.weekly), ("level shifts", a.all)].min { $0.1 < $1.1 }!.0
                return [String(a.series.split(separator: "/").last ?? ""), String(format: "%.3f", a.daily), String(format: "%.3f", a.weekly), String(format: "%.3f", a.all), best, a.model]
            })
            let n = Double(ablationRows.count)
            print(String(format: "mean MASE: daily season %.3f, + weekly %.3f, + level shifts %.3f", ablationRows.reduce(0) { $0 + $1.daily } / n,
                         ablationRows.reduce(0) { $0 + $1.weekly } / n, ablationRows.reduce(0) { $0 + $1.all } / n))
        }
        if !curve.isEmpty {
            print("")
            printTable(["TRAINING", "MEAN MASE", "MEDIAN MASE", "INSIDE 80 %", "INSIDE 95 %", "WINKLER 80 %", "WINKLER 95 %"], curve.map {
                ["\($0.seasons) season(s)", String(format: "%.3f", $0.mase), String(format: "%.3f", $0.medianMase), String(format: "%.1f %%", $0.coverage80 * 100), String(format: "%.1f %%", $0.coverage95 * 100),
                 String(format: "%.2f", $0.winkler80), String(format: "%.2f", $0.winkler95)]
            })
        }
    }

    /// A series to evaluate: its regular values, daily period (steps) and least training.
    struct Task { var name: String; var values: [Double]; var period: Int; var minimumTraining: Int }

    /// Which of the forecaster's candidates are allowed.
    enum Models { case daily, weekly, all }

    /// One series' mean MASE with the daily season alone, with the weekly candidates, and with level
    /// shifts too (the product), and the product's model at the last origin.
    struct AblationRow: Encodable { var series: String; var daily: Double; var weekly: Double; var all: Double; var model: String }

    /// Accuracy when the forecaster sees only the last `seasons` seasons.
    struct CurvePoint: Encodable { var seasons: Int; var mase: Double; var medianMase: Double; var coverage80: Double; var coverage95: Double; var winkler80: Double; var winkler95: Double }

    /// One series forecast `horizon` steps ahead from `origins` origins a period apart (the last `horizon` steps before the end), beside the
    /// seasonal naive forecast; nil when no origin leaves `minimumTraining` values to train on.
    /// With `trainingLimit`, the forecaster sees only that many values before each origin (the scale of
    /// MASE and Winkler still comes from everything before it, so lengths compare).
    static func evaluate(_ name: String, _ values: [Double], period m: Int, horizon: Int, origins: Int, minimumTraining: Int, intervals: Forecaster.IntervalRule,
                         widthScales: [Double] = [1], trainingLimit: Int? = nil, models: Models = .all) -> [Row]? {
        var mase = 0.0, smape = 0.0, nMase = 0.0, nSmape = 0.0, count = 0, scored = 0, wape = 0.0
        // Per width factor: actuals inside the 80 % and 95 % intervals, Winkler scores (the same forecasts).
        var in80 = [Int](repeating: 0, count: widthScales.count), in95 = in80
        var w80 = [Double](repeating: 0, count: widthScales.count), w95 = w80
        var model = ""
        for k in (1...max(origins, 1)).reversed() {
            let origin = values.count - horizon - (k - 1) * m
            guard origin >= minimumTraining else { continue }
            let train = Array(values[..<origin]), actual = Array(values[origin..<min(origin + horizon, values.count)])
            let (chosen, points) = Forecaster.forecast(trainingLimit.map { Array(train.suffix($0)) } ?? train, horizon: actual.count, period: m,
                                                       week: models == .daily ? 0 : 7 * m, levelShifts: models == .all, intervals: intervals)
            model = chosen.description
            let naive = (0..<actual.count).map { train[train.count - m + ($0 % m)] }
            mase += ForecastAccuracy.mase(actual: actual, forecast: points.map(\.mean), training: train, period: m)
            smape += ForecastAccuracy.smape(actual: actual, forecast: points.map(\.mean))
            nMase += ForecastAccuracy.mase(actual: actual, forecast: naive, training: train, period: m)
            nSmape += ForecastAccuracy.smape(actual: actual, forecast: naive)
            let w = ForecastAccuracy.wape(actual: actual, forecast: points.map(\.mean))
            wape += w.isNaN ? 1 : w
            for (j, scale) in widthScales.enumerated() {
                let widened = scale == 1 ? points : points.map { $0.widened(by: scale) }
                w80[j] += ForecastAccuracy.scaledWinkler(actual: actual, lo: widened.map(\.lo80), hi: widened.map(\.hi80), alpha: 0.2, training: train, period: m)
                w95[j] += ForecastAccuracy.scaledWinkler(actual: actual, lo: widened.map(\.lo95), hi: widened.map(\.hi95), alpha: 0.05, training: train, period: m)
                for (a, p) in zip(actual, widened) {
                    if a >= p.lo80 && a <= p.hi80 { in80[j] += 1 }
                    if a >= p.lo95 && a <= p.hi95 { in95[j] += 1 }
                }
            }
            scored += actual.count
            count += 1
        }
        guard count > 0 else { return nil }
        let c = Double(count)
        return widthScales.indices.map { j in
            Row(series: name, model: model, mase: mase / c, smape: smape / c, naiveMase: nMase / c, naiveSmape: nSmape / c,
                coverage80: Double(in80[j]) / Double(scored), coverage95: Double(in95[j]) / Double(scored), winkler80: w80[j] / c, winkler95: w95[j] / c, wape: wape / c)
        }
    }
}
