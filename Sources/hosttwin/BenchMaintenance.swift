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
        /// The origins reported with confidence, at the level chosen on the other categories.
        var confident: Confident?
        enum CodingKeys: String, CodingKey {
            case category, series, origins, hitRate = "hit_rate", meanPercentile = "mean_percentile", yesterdayHitRate = "yesterday_hit_rate", confident
        }

        init(category: String, series: Int, origins o: [Origin]) {
            let n = Double(max(o.count, 1))
            self.category = category
            self.series = series
            origins = o.count
            hitRate = Double(o.filter(\.hit).count) / n
            meanPercentile = o.reduce(0) { $0 + $1.percentile } / n
            yesterdayHitRate = Double(o.filter { $0.yesterdayPercentile < 0.1 }.count) / n
        }
    }

    func run() throws {
        let slotMs = try TwinTime.parseDuration(slot), withinMs = try TwinTime.parseDuration(within), historyMs = try TwinTime.parseDuration(history)
        let minHistoryMs = try TwinTime.parseDuration(minHistory), everyMs = try TwinTime.parseDuration(every)
        guard slotMs > 0, withinMs > slotMs, minHistoryMs >= 86_400_000, historyMs >= minHistoryMs, everyMs > 0 else {
            throw CLIError("need --slot > 0, --within > --slot, --min-history ≥ 1d (a daily cycle), --history ≥ --min-history, --every > 0")
        }
        var results: [Result] = []
        var byCategory: [[Origin]] = []
        for name in category {
            let corpus: NABCorpus
            do { corpus = try NABCorpus.load(root: nab, category: name) } catch { throw CLIError("\(error) (pass --nab DIR)") }
            var origins: [Origin] = [], used = 0
            for file in corpus.files {
                guard let e = Self.evaluate(file, slot: slotMs, within: withinMs, history: historyMs, minHistory: minHistoryMs, every: everyMs, medianProfile: profile) else { continue }
                used += 1
                origins += e
            }
            if !json { FileHandle.standardError.write(Data("\(name): \(used) series, \(origins.count) origins\n".utf8)) }
            byCategory.append(origins)
            results.append(Result(category: name, series: used, origins: origins))
        }
        // The regularity a confident window needs, chosen leave-one-category-out: for each category, on
        // the others only (the lowest level whose windows hit in ≥ 90 % of their origins there).
        for (k, _) in category.enumerated() where category.count > 1 {
            let others = byCategory.indices.filter { $0 != k }.flatMap { byCategory[$0] }
            let level = Self.confidentLevel(others)
            results[k].confident = Self.confident(byCategory[k], level: level)
        }
        var total = Result(category: "all", series: results.reduce(0) { $0 + $1.series }, origins: byCategory.flatMap { $0 })
        total.confident = category.count > 1 ? Self.pooled(results.compactMap(\.confident)) : nil
        let shipped = Self.confident(byCategory.flatMap { $0 }, level: Advisor.confidentRegularity)
        if json {
            try printJSON(Report(categories: results + [total], shipped: shipped))
            return
        }
        printTable(["CATEGORY", "SERIES", "ORIGINS", "IN LOWEST DECILE", "MEAN PERCENTILE", "YESTERDAY'S SLOT", "CONFIDENT (LOCO LEVEL)", "THEIR HITS"], (results + [total]).map {
            [$0.category, String($0.series), String($0.origins), String(format: "%.1f %%", $0.hitRate * 100), String(format: "%.1f", $0.meanPercentile * 100),
             String(format: "%.1f %%", $0.yesterdayHitRate * 100),
             $0.confident.map { String(format: "%.1f %% (%@)", $0.coverage * 100, $0.level.map { String(format: "%.2f", $0) } ?? "per fold") } ?? "-",
             $0.confident.map { String(format: "%.1f %%", $0.hitRate * 100) } ?? "-"]
        })
        for level in Self.levels {
            let c = Self.confident(byCategory.flatMap { $0 }, level: level)
            let each = results.indices.map { k in
                let e = Self.confident(byCategory[k], level: level)
                return String(format: "  %@ %.0f %%/%.0f %%", String(results[k].category.prefix(8)), e.coverage * 100, e.hitRate * 100)
            }
            print(String(format: "  level %.1f: confident on %5.1f %% of origins, %5.1f %% of those hit", level, c.coverage * 100, c.hitRate * 100) + each.joined())
        }
        print(String(format: "at the shipped level (a time of day among the quietest tenth of the history's slots on ≥ %.0f %% of its days): confident on %.1f %% of origins, %.1f %% of those in the lowest decile",
                     Advisor.confidentRegularity * 100, shipped.coverage * 100, shipped.hitRate * 100))
    }

    struct Report: Encodable { var categories: [Result]; var shipped: Confident }

    /// Origins whose window is reported with confidence (regularity at or above `level`): their share
    /// and how many of them hit.
    struct Confident: Encodable {
        var level: Double?
        var origins: Int
        var confident: Int
        var hits: Int
        var coverage: Double
        var hitRate: Double
        enum CodingKeys: String, CodingKey { case level, origins, confident, hits, coverage, hitRate = "hit_rate" }

        init(level: Double?, origins: Int, confident: Int, hits: Int) {
            (self.level, self.origins, self.confident, self.hits) = (level, origins, confident, hits)
            coverage = origins > 0 ? Double(confident) / Double(origins) : 0
            hitRate = confident > 0 ? Double(hits) / Double(confident) : 0
        }
    }

    /// The regularity levels a confident window may need.
    static let levels: [Double] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

    static func confident(_ origins: [Origin], level: Double) -> Confident {
        let c = origins.filter { $0.regularity >= level - 1e-9 }
        return Confident(level: level, origins: origins.count, confident: c.count, hits: c.filter(\.hit).count)
    }

    static func pooled(_ folds: [Confident]) -> Confident {
        Confident(level: nil, origins: folds.reduce(0) { $0 + $1.origins }, confident: folds.reduce(0) { $0 + $1.confident }, hits: folds.reduce(0) { $0 + $1.hits })
    }

    /// The lowest level at which at least 90 % of `origins`' confident windows hit (the highest level
    /// when none does).
    static func confidentLevel(_ origins: [Origin]) -> Double {
        levels.first { confident(origins, level: $0).hitRate >= 0.9 } ?? levels[levels.count - 1]
    }

    /// One origin: the percentile of the chosen slot's actual load among the span's slots (0 = quietest),
    /// that of yesterday's quietest slot repeated, and the chosen time of day's quiet regularity over
    /// the history (``Advisor/quietRegularity(_:period:width:start:days:)``: what the product's confidence rests on).
    struct Origin {
        var percentile: Double
        var yesterdayPercentile: Double
        var regularity: Double
        var hit: Bool { percentile < 0.1 }
    }

    /// One series' origins; nil when the series is too short or irregular.
    static func evaluate(_ file: NABCorpus.File, slot: Int64, within: Int64, history: Int64, minHistory: Int64, every: Int64, medianProfile: Bool) -> [Origin]? {
        let times = file.timestamps.map { $0 * 1000 }
        let deltas = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        guard let step = deltas.isEmpty ? nil : deltas[deltas.count / 2], step > 0, 86_400_000 % step == 0 else { return nil }
        let day = Int(86_400_000 / step)
        let points = zip(times, file.values).map { (($0 - times[0]) / step * step + times[0], $1) }
        let y = ForecastHistory.regular(points, step: step, period: day)
        let width = Int(max(1, slot / step)), ahead = Int(within / step), back = Int(history / step), least = Int(minHistory / step), stride = Int(max(1, every / step))
        guard y.count >= least + ahead else { return nil }
        var out: [Origin] = []
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
            let start = Advisor.quietestSlot(forecast, width: width).start
            let regular = Advisor.quietRegularity(past, period: day, width: width, start: past.count + start)
            // Baseline: the last day's quietest slot, at the same time of day in the day ahead.
            let repeated = Advisor.quietestSlot(Array(past.suffix(day)), width: width).start
            out.append(Origin(percentile: percentile(start), yesterdayPercentile: percentile(repeated),
                              regularity: regular.days > 0 ? Double(regular.quiet) / Double(regular.days) : 0))
        }
        return out
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
