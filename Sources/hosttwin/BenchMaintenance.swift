import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore

/// `hosttwin bench maintenance`: whether the maintenance window lands in the quiet part of the week that
/// follows, over rolling origins of NAB's load series.
struct BenchMaintenance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "Rolling-origin evaluation of the maintenance window on NAB's load series: is the chosen slot's actual load in the lowest decile of the week?",
        discussion: """
        For every series of the chosen NAB categories (resampled to its usual step; gaps filled as production \
        forecasts fill them), origins every --every from --min-history after the first point to --within before the \
        last: the forecaster (as `maintenance-window` uses it) learns from up to --history before the origin, the \
        quietest --slot of its forecast over the next --within is chosen, and the slot's actual mean load is ranked \
        among every slot of that span (sliding by one step). A hit is a chosen slot in the lowest decile. Beside it, \
        two baselines: yesterday's quietest slot repeated (the same time of day, the first day ahead), and a slot \
        at random (10 % by definition).
        """
    )
    @Option(help: ArgumentHelp("NAB folder (data/, labels/).", valueName: "DIR")) var nab = "../shared/data/nab"
    @Option(parsing: .upToNextOption, help: "Categories whose series are load (requests, CPU, traffic, message volume).")
    var category = ["realAWSCloudwatch", "realTraffic", "realTweets"]
    @Option(help: ArgumentHelp("Length of the slot.", valueName: "DURATION")) var slot = "1h"
    @Option(help: ArgumentHelp("The span ahead the slot is chosen in, and ranked against.", valueName: "DURATION")) var within = "7d"
    @Option(help: ArgumentHelp("History the forecast learns from.", valueName: "DURATION")) var history = "7d"
    @Option(help: ArgumentHelp("Least history at an origin.", valueName: "DURATION")) var minHistory = "2d"
    @Option(help: ArgumentHelp("Distance between origins.", valueName: "DURATION")) var every = "6h"
    @Flag(help: "Choose by the median load at each time of day over the history instead of the forecast (a comparison).") var profile = false
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable {
        var category: String
        var series: Int
        var origins: Int
        /// Share of origins whose chosen slot's actual load is in the lowest decile of the span ahead.
        var hitRate: Double
        /// Mean percentile of the chosen slot's actual load among the span's slots (0 = quietest).
        var meanPercentile: Double
        var yesterdayHitRate: Double
        enum CodingKeys: String, CodingKey {
            case category, series, origins, hitRate = "hit_rate", meanPercentile = "mean_percentile", yesterdayHitRate = "yesterday_hit_rate"
        }
    }

    func run() throws {
        let slotMs = try TwinTime.parseDuration(slot), withinMs = try TwinTime.parseDuration(within), historyMs = try TwinTime.parseDuration(history)
        let minHistoryMs = try TwinTime.parseDuration(minHistory), everyMs = try TwinTime.parseDuration(every)
        guard slotMs > 0, withinMs > slotMs, minHistoryMs >= 86_400_000, historyMs >= minHistoryMs, everyMs > 0 else {
            throw CLIError("need --slot > 0, --within > --slot, --min-history ≥ 1d (a daily cycle), --history ≥ --min-history, --every > 0")
        }
        var results: [Result] = []
        for name in category {
            let corpus: NABCorpus
            do { corpus = try NABCorpus.load(root: nab, category: name) } catch { throw CLIError("\(error) (pass --nab DIR)") }
            var hits = 0, yesterdayHits = 0, origins = 0, percentiles = 0.0, used = 0
            for file in corpus.files {
                guard let e = Self.evaluate(file, slot: slotMs, within: withinMs, history: historyMs, minHistory: minHistoryMs, every: everyMs, medianProfile: profile) else { continue }
                used += 1
                hits += e.hits; yesterdayHits += e.yesterdayHits; origins += e.origins; percentiles += e.percentileSum
            }
            let r = Result(category: name, series: used, origins: origins, hitRate: origins > 0 ? Double(hits) / Double(origins) : 0,
                           meanPercentile: origins > 0 ? percentiles / Double(origins) : 0, yesterdayHitRate: origins > 0 ? Double(yesterdayHits) / Double(origins) : 0)
            if !json { FileHandle.standardError.write(Data("\(name): \(used) series, \(origins) origins\n".utf8)) }
            results.append(r)
        }
        let all = results.reduce(into: (0, 0.0, 0.0, 0.0)) { a, r in
            a.0 += r.origins; a.1 += r.hitRate * Double(r.origins); a.2 += r.meanPercentile * Double(r.origins); a.3 += r.yesterdayHitRate * Double(r.origins)
        }
        let total = Result(category: "all", series: results.reduce(0) { $0 + $1.series }, origins: all.0, hitRate: all.0 > 0 ? all.1 / Double(all.0) : 0,
                           meanPercentile: all.0 > 0 ? all.2 / Double(all.0) : 0, yesterdayHitRate: all.0 > 0 ? all.3 / Double(all.0) : 0)
        if json { try printJSON(results + [total]); return }
        printTable(["CATEGORY", "SERIES", "ORIGINS", "IN LOWEST DECILE", "MEAN PERCENTILE", "YESTERDAY'S SLOT"], (results + [total]).map {
            [$0.category, String($0.series), String($0.origins), String(format: "%.1f %%", $0.hitRate * 100), String(format: "%.1f", $0.meanPercentile * 100),
             String(format: "%.1f %%", $0.yesterdayHitRate * 100)]
        })
    }

    /// One series' origins: hits, yesterday's-slot hits, origins and the sum of percentiles; nil when the
    /// series is too short or irregular.
    static func evaluate(_ file: NABCorpus.File, slot: Int64, within: Int64, history: Int64, minHistory: Int64, every: Int64, medianProfile: Bool)
        -> (hits: Int, yesterdayHits: Int, origins: Int, percentileSum: Double)? {
        let times = file.timestamps.map { $0 * 1000 }
        let deltas = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        guard let step = deltas.isEmpty ? nil : deltas[deltas.count / 2], step > 0, 86_400_000 % step == 0 else { return nil }
        let day = Int(86_400_000 / step)
        let points = zip(times, file.values).map { (($0 - times[0]) / step * step + times[0], $1) }
        let y = ForecastHistory.regular(points, step: step, period: day)
        let width = Int(max(1, slot / step)), ahead = Int(within / step), back = Int(history / step), least = Int(minHistory / step), stride = Int(max(1, every / step))
        guard y.count >= least + ahead else { return nil }
        var hits = 0, yesterdayHits = 0, origins = 0, percentileSum = 0.0
        var origin = least
        while origin + ahead <= y.count {
            defer { origin += stride }
            let past = Array(y[max(0, origin - back)..<origin])
            let forecast = medianProfile ? Self.profile(past, horizon: ahead, period: day) : Forecaster.forecast(past, horizon: ahead, period: day, week: 7 * day).points.map { max(0, $0.mean) }
            let future = Array(y[origin..<(origin + ahead)])
            // The mean actual load of every slot of the span ahead.
            var sum = future[0..<width].reduce(0, +)
            var slots = [sum / Double(width)]
            for i in width..<future.count { sum += future[i] - future[i - width]; slots.append(sum / Double(width)) }
            func percentile(_ start: Int) -> Double { Double(slots.filter { $0 < slots[start] }.count) / Double(slots.count) }
            let chosen = percentile(Advisor.quietestSlot(forecast, width: width).start)
            // Baseline: the last day's quietest slot, at the same time of day in the day ahead.
            let repeated = Advisor.quietestSlot(Array(past.suffix(day)), width: width).start
            origins += 1
            percentileSum += chosen
            if chosen < 0.1 { hits += 1 }
            if percentile(repeated) < 0.1 { yesterdayHits += 1 }
        }
        return (hits, yesterdayHits, origins, percentileSum)
    }

    /// The median of the values at the same time of day over the history, for each step ahead.
    static func profile(_ past: [Double], horizon: Int, period: Int) -> [Double] {
        (0..<horizon).map { h in
            var v: [Double] = []
            var i = past.count - period + (h % period)
            while i >= 0 { if i < past.count { v.append(past[i]) }; i -= period }
            v.sort()
            return v.isEmpty ? 0 : v[v.count / 2]
        }
    }
}
