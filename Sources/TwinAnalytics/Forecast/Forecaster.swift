import Foundation

/// One forecast step: the point forecast and its 80 % and 95 % prediction intervals.
public struct ForecastPoint: Sendable, Equatable {
    public var mean: Double
    public var lo80: Double
    public var hi80: Double
    public var lo95: Double
    public var hi95: Double

    /// The same point with its intervals' half-widths multiplied by `factor`.
    public func widened(by factor: Double) -> ForecastPoint {
        ForecastPoint(mean: mean, lo80: mean - factor * (mean - lo80), hi80: mean + factor * (hi80 - mean),
                      lo95: mean - factor * (mean - lo95), hi95: mean + factor * (hi95 - mean))
    }
}

/// The models the forecaster chooses among.
public enum ForecastModel: Sendable, Equatable, CustomStringConvertible {
    case seasonalNaive(period: Int)
    case linearTrend
    /// Additive Holt-Winters with a damped trend (`phi` 1 = undamped); `period` 0 = no season.
    case holtWinters(alpha: Double, beta: Double, gamma: Double, phi: Double, period: Int)
    /// Two seasons (a day inside a week): a smoothed weekly profile is taken out, Holt-Winters with the
    /// daily season forecasts the rest, the profile is added back.
    case weekly(alpha: Double, beta: Double, gamma: Double, phi: Double, period: Int, week: Int)
    /// `model` fitted to the history with everything before step `at` moved by `by` (a level shift, such
    /// as a deployment's, found in the history: the old level no longer predicts).
    indirect case afterLevelShift(ForecastModel, at: Int, by: Double)

    public var description: String {
        switch self {
        case .seasonalNaive(let m): return "seasonal naive (period \(m))"
        case .linearTrend: return "robust linear trend"
        case .holtWinters(let a, let b, let g, let p, let m):
            return m > 0 ? "Holt-Winters additive (α \(a), β \(b), γ \(g), φ \(p), period \(m))" : "Holt (α \(a), β \(b), φ \(p))"
        case .weekly(let a, let b, let g, let p, let m, let w):
            return "weekly profile + Holt-Winters (α \(a), β \(b), γ \(g), φ \(p), periods \(m) and \(w))"
        case .afterLevelShift(let model, let at, let by):
            return "\(model) after a level shift of \(String(format: "%g", by)) at step \(at)"
        }
    }
}

/// Forecasts a regularly sampled series with no configuration: candidate models (seasonal naive, a
/// robust linear trend, exponential smoothing with damped trend and, when two periods of history
/// exist, additive seasonality; with two weeks, a weekly profile under daily Holt-Winters; each also on
/// the history moved past its latest level shift when one stands out) are fitted on all but the last
/// stretch of the history, the one with the smallest error on that stretch is refitted on everything.
/// Prediction intervals come from the errors the chosen kind of model made on up to three held-out
/// stretches (the widest sets the width).
public enum Forecaster {
    /// How the held-out stretches' errors become an interval's half-width.
    public enum IntervalRule: String, CaseIterable, Sendable {
        /// The widest stretch's quantile (the default): the future as rough as the roughest recent stretch.
        case widest
        /// The median of the stretches' quantiles.
        case median
        /// The quantile of all the stretches' errors together.
        case pooled
    }

    /// The forecast of `y` for `horizon` steps; `period` is the seasonal period in steps (e.g. one day),
    /// used by seasonal naive once the history holds a whole period and by Holt-Winters once it holds two;
    /// `week` (a multiple of `period`, 0 = none) is a second, longer season, used once two of it are there;
    /// `levelShifts` false leaves out the candidates fitted past a level shift (for comparison).
    public static func forecast(_ y: [Double], horizon: Int, period: Int, week: Int = 0, levelShifts: Bool = true,
                                intervals rule: IntervalRule = .widest) -> (model: ForecastModel, points: [ForecastPoint]) {
        let values = y.filter(\.isFinite)
        guard values.count >= 3, horizon > 0 else {
            let last = values.last ?? .nan
            return (.seasonalNaive(period: 1), Array(repeating: ForecastPoint(mean: last, lo80: last, hi80: last, lo95: last, hi95: last), count: max(horizon, 0)))
        }
        // The season is used once one whole period is there (seasonal naive); Holt-Winters needs two.
        let m = period > 1 && values.count > period ? period : 0
        let w = m > 0 && week > m && week % m == 0 ? week : 0
        // Hold out the last stretch (as long as the horizon, at most a quarter of the history) and choose the
        // model on it; when a weekly season can be fitted, on every such stretch of the last week (up to
        // seven), each forecast from what came before it, since a day or two of weekdays cannot tell a
        // weekly model from a daily one.
        let hold = min(horizon, max(1, values.count / 4))
        let weeklySelection = w > 0 && values.count - w >= 2 * w + 2
        let selectionStretches = weeklySelection ? min(7, max(1, w / hold)) : 1
        // A level shift inside the held-out stretches would judge every candidate by the shift: the models
        // are chosen and fitted on the history moved past it.
        if levelShifts, let shift = levelShift(values, period: m, week: w), shift.at >= values.count - selectionStretches * hold {
            let (model, points) = forecast(shifted(values, shift), horizon: horizon, period: period, week: week, levelShifts: false, intervals: rule)
            return (.afterLevelShift(model, at: shift.at, by: shift.by), points)
        }
        let train = Array(values[..<(values.count - hold)])
        /// The errors on held-out stretch `k` (1 = the last), forecast by `model`'s kind (fitted to `train`
        /// for the last, refitted to what came before the others); nil when that is too short for its kind.
        func residuals(_ model: ForecastModel, _ k: Int) -> [Double]? {
            let end = values.count - (k - 1) * hold, cut = end - hold
            guard cut >= minimumHistory(model) else { return nil }
            let past = k == 1 ? train : Array(values[..<cut])
            let f = predict(k == 1 ? model : refit(model, past, period: m), past, horizon: hold)
            return zip(values[cut..<end], f).map { $0 - $1 }
        }
        var tried = candidates(train, period: m, week: w)
        if levelShifts, let shift = levelShift(train, period: m, week: w) {
            let moved = shifted(train, shift)
            tried += candidates(moved, period: m, week: w).map { .afterLevelShift($0, at: shift.at, by: shift.by) }
        }
        // The candidate with the smallest mean absolute error over the held-out stretches wins (a kind that
        // cannot be fitted before every one of them is not compared).
        var best: (model: ForecastModel, error: Double, residuals: [Double])?
        for model in tried {
            let errors = (1...selectionStretches).compactMap { residuals(model, $0) }
            guard errors.count == selectionStretches else { continue }
            let mae = errors.reduce(0) { $0 + $1.reduce(0) { $0 + abs($1) } / Double($1.count) } / Double(errors.count)
            if mae.isFinite, best == nil || mae < best!.error { best = (model, mae, errors[0]) }
        }
        let chosen = best?.model ?? .seasonalNaive(period: max(m, 1))
        let model = refit(chosen, values, period: m)
        let means = predict(model, values, horizon: horizon)
        // Interval half-widths from held-out errors (80th and 95th percentiles of |error|), widening with
        // the square root of the horizon beyond the held-out stretch. Errors come from the last held-out
        // stretch and up to two before it, each forecast by the chosen kind of model from what came before
        // it; the widest stretch sets the width, since the future is as likely to resemble the
        // roughest recent stretch as the average one. Measured on NAB (`bench forecast`): 82 % / 95 % of
        // the actuals inside the 80 % / 95 % intervals (80 % / 93 % before seasonal naive could be fitted
        // to a single period, which left fewer earlier stretches; 74 % / 90 % with the errors pooled and
        // 70 % / 87 % with the median stretch).
        var stretches = [best?.residuals ?? [0]]
        if best != nil {
            for k in 2...3 { guard let r = residuals(chosen, k) else { break }; stretches.append(r) }
        }
        func quantile(_ q: Double, _ errors: [Double]) -> Double {
            let sorted = errors.filter(\.isFinite).map(abs).sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted[max(0, min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
        }
        func width(_ q: Double) -> Double {
            switch rule {
            case .widest: return stretches.map { quantile(q, $0) }.max() ?? 0
            case .median: let w = stretches.map { quantile(q, $0) }.sorted(); return w[w.count / 2]
            case .pooled: return quantile(q, stretches.flatMap { $0 })
            }
        }
        let w80 = width(0.8), w95 = width(0.95)
        let points = means.enumerated().map { h, mu -> ForecastPoint in
            let grow = h + 1 > hold ? (Double(h + 1) / Double(hold)).squareRoot() : 1
            return ForecastPoint(mean: mu, lo80: mu - w80 * grow, hi80: mu + w80 * grow, lo95: mu - w95 * grow, hi95: mu + w95 * grow)
        }
        return (model, points)
    }

    /// The candidate models for a training series.
    static func candidates(_ y: [Double], period m: Int, week w: Int = 0) -> [ForecastModel] {
        var out: [ForecastModel] = [.linearTrend, .seasonalNaive(period: m > 0 && y.count > m ? m : 1)]
        out.append(holtWinters(y, period: 0))
        if m > 0, y.count >= 2 * m + 2 { out.append(holtWinters(y, period: m)) }
        if w > 0, y.count >= 2 * w + 2 {
            out.append(weekly(y, period: m, week: w))
        }
        return out
    }

    /// The shortest history `model`'s kind can be fitted to: a period and one value for seasonal naive,
    /// two periods and two values for seasonal Holt-Winters, ten values otherwise.
    static func minimumHistory(_ model: ForecastModel) -> Int {
        switch model {
        case .seasonalNaive(let m) where m > 1: return max(10, m + 1)
        case .holtWinters(_, _, _, _, let m) where m > 0: return 2 * m + 2
        case .weekly(_, _, _, _, _, let w): return 2 * w + 2
        case .afterLevelShift(let model, _, _): return minimumHistory(model)
        default: return 10
        }
    }

    /// The model refitted on the whole history (smoothing parameters chosen again).
    static func refit(_ model: ForecastModel, _ y: [Double], period: Int) -> ForecastModel {
        switch model {
        case .holtWinters(_, _, _, _, let m): return holtWinters(y, period: m)
        case .weekly(_, _, _, _, let m, let w): return weekly(y, period: m, week: w)
        case .afterLevelShift(let inner, _, _):
            // The shift is looked for again in the longer history; none there: the model as it is.
            guard let shift = levelShift(y, period: period, week: week(of: inner)) else { return refit(inner, y, period: period) }
            return .afterLevelShift(refit(inner, shifted(y, shift), period: period), at: shift.at, by: shift.by)
        default: return model
        }
    }

    /// Forecasts of `model` fitted to `y`.
    static func predict(_ model: ForecastModel, _ y: [Double], horizon h: Int) -> [Double] {
        switch model {
        case .seasonalNaive(let m):
            let m = max(1, min(m, y.count))
            return (0..<h).map { y[y.count - m + ($0 % m)] }
        case .linearTrend:
            let (a, b) = robustLine(y)
            let n = Double(y.count)
            return (0..<h).map { a + b * (n + Double($0)) }
        case .holtWinters(let alpha, let beta, let gamma, let phi, let m):
            return HoltWinters(alpha: alpha, beta: beta, gamma: gamma, phi: phi, period: m).run(y, horizon: h).forecast
        case .weekly(let alpha, let beta, let gamma, let phi, let m, let w):
            let profile = weeklyProfile(y, period: m, week: w)
            let rest = y.indices.map { y[$0] - profile[$0 % w] }
            let f = HoltWinters(alpha: alpha, beta: beta, gamma: gamma, phi: phi, period: m).run(rest, horizon: h).forecast
            return f.indices.map { f[$0] + profile[(y.count + $0) % w] }
        case .afterLevelShift(let model, let at, let by):
            return predict(model, shifted(y, (at, by)), horizon: h)
        }
    }

    /// The weekly period `model` uses, 0 if none.
    static func week(of model: ForecastModel) -> Int {
        switch model {
        case .weekly(_, _, _, _, _, let w): return w
        case .afterLevelShift(let inner, _, _): return week(of: inner)
        default: return 0
        }
    }

    /// `y` with the values before `shift.at` moved by `shift.by`.
    static func shifted(_ y: [Double], _ shift: (at: Int, by: Double)) -> [Double] {
        var out = y
        for i in 0..<min(shift.at, y.count) { out[i] += shift.by }
        return out
    }

    /// The latest lasting level shift in `y`, if one stands out: a step between the medians of the values
    /// (freed of their daily and weekly profiles) just before and just after it of at least 6 times the
    /// noise (the robust spread of step-to-step changes), with the level after it holding to the end and
    /// the level before it holding for up to a period before. `by` moves the old values to the new level.
    public static func levelShift(_ y: [Double], period m: Int, week w: Int = 0) -> (at: Int, by: Double)? {
        let n = y.count
        let side = max(6, m / 12)
        guard n >= 4 * side else { return nil }
        // Deseasonalise by the mean daily profile when two periods are there, and by the weekly profile
        // when two weeks are (a weekday's busy hours are not a shift).
        var r = y
        if m > 1, n >= 2 * m {
            if w > m, w % m == 0, n >= 2 * w {
                let profile = weeklyProfile(y, period: m, week: w)
                for i in 0..<n { r[i] -= profile[i % w] }
            }
            var sum = [Double](repeating: 0, count: m), count = [Double](repeating: 0, count: m)
            for i in 0..<n { sum[i % m] += r[i]; count[i % m] += 1 }
            let daily = (0..<m).map { sum[$0] / count[$0] }
            for i in 0..<n { r[i] -= daily[i % m] }
        }
        let noise = 1.4826 * median((1..<n).map { abs(r[$0] - r[$0 - 1]) }) / 2.0.squareRoot()
        guard noise > 0 else { return nil }
        /// The step between the medians of the `side` values after and before `c`.
        func jump(_ c: Int) -> Double { abs(median(r[c..<(c + side)]) - median(r[(c - side)..<c])) }
        var c = n - side
        while c >= side {
            var sharpest = (at: c, jump: jump(c))
            if sharpest.jump >= 6 * noise {
                // Of a run of qualifying steps, the sharpest one.
                var k = c - 1
                while k >= side {
                    let j = jump(k)
                    guard j >= 6 * noise else { break }
                    if j > sharpest.jump { sharpest = (k, j) }
                    k -= 1
                }
                let at = sharpest.at
                let before = median(r[(at - side)..<at]), after = median(r[at..<(at + side)])
                let newLevel = median(r[at..<n]), oldLevel = median(r[max(0, at - max(m, side))..<at])
                if abs(newLevel - after) < 0.5 * sharpest.jump, abs(oldLevel - before) < 0.5 * sharpest.jump { return (at, newLevel - oldLevel) }
                c = k
            }
            c -= 1
        }
        return nil
    }

    static func median<C: Collection>(_ x: C) -> Double where C.Element == Double {
        let s = x.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The weekly profile of `y` (phase `i % week`) less its daily part: the median of every phase of the
    /// week over the history (a mean, or weekly seasonal naive, copies last week's spikes: worse on
    /// realTweets, BENCHMARKS.md), smoothed over a 24th of `period` either side (an hour for a daily period, at
    /// least a step), with the mean of each daily phase taken out, so that Holt-Winters' daily season keeps
    /// what every day shares.
    static func weeklyProfile(_ y: [Double], period m: Int, week w: Int) -> [Double] {
        var byPhase = [[Double]](repeating: [], count: w)
        for i in y.indices { byPhase[i % w].append(y[i]) }
        let raw = byPhase.map { median($0) }
        let half = max(1, m / 24)
        var smooth = (0..<w).map { p in (-half...half).reduce(0.0) { $0 + raw[(p + $1 + w) % w] } / Double(2 * half + 1) }
        var daily = [Double](repeating: 0, count: m)
        for p in 0..<w { daily[p % m] += smooth[p] / Double(w / m) }
        for p in 0..<w { smooth[p] -= daily[p % m] }
        return smooth
    }

    /// ``weekly`` with its daily Holt-Winters' parameters chosen by one-step squared error.
    static func weekly(_ y: [Double], period m: Int, week w: Int) -> ForecastModel {
        let profile = weeklyProfile(y, period: m, week: w)
        guard case .holtWinters(let a, let b, let g, let p, _) = holtWinters(y.indices.map { y[$0] - profile[$0 % w] }, period: m) else {
            return .seasonalNaive(period: w)
        }
        return .weekly(alpha: a, beta: b, gamma: g, phi: p, period: m, week: w)
    }

    /// Holt-Winters with smoothing parameters chosen on a small grid by one-step squared error.
    static func holtWinters(_ y: [Double], period m: Int) -> ForecastModel {
        var best: (Double, ForecastModel)?
        for alpha in [0.1, 0.3, 0.6, 0.9] {
            for beta in [0.0, 0.02, 0.1] {
                for phi in beta == 0 ? [1.0] : [0.9, 0.98, 1.0] {
                    for gamma in m > 0 ? [0.05, 0.2, 0.5] : [0.0] {
                        let sse = HoltWinters(alpha: alpha, beta: beta, gamma: gamma, phi: phi, period: m).run(y, horizon: 0).sse
                        if sse.isFinite, best == nil || sse < best!.0 {
                            best = (sse, .holtWinters(alpha: alpha, beta: beta, gamma: gamma, phi: phi, period: m))
                        }
                    }
                }
            }
        }
        return best?.1 ?? .holtWinters(alpha: 0.3, beta: 0, gamma: 0, phi: 1, period: 0)
    }

    /// Intercept and slope (per step) by least squares with two rounds of Huber reweighting, so a few
    /// spikes do not tilt the line.
    static func robustLine(_ y: [Double]) -> (Double, Double) {
        let n = y.count
        var w = [Double](repeating: 1, count: n)
        var a = y.reduce(0, +) / Double(n), b = 0.0
        for _ in 0..<3 {
            var sw = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0
            for i in 0..<n {
                let x = Double(i)
                sw += w[i]; sx += w[i] * x; sy += w[i] * y[i]; sxx += w[i] * x * x; sxy += w[i] * x * y[i]
            }
            let den = sw * sxx - sx * sx
            guard den != 0 else { break }
            b = (sw * sxy - sx * sy) / den
            a = (sy - b * sx) / sw
            let res = (0..<n).map { abs(y[$0] - a - b * Double($0)) }
            let scale = max(res.sorted()[n / 2] * 1.4826, 1e-12)
            w = res.map { $0 <= 1.345 * scale ? 1 : 1.345 * scale / $0 }
        }
        return (a, b)
    }
}

/// Additive Holt-Winters (level, damped trend, seasonal indices), one pass over the data.
struct HoltWinters {
    var alpha: Double
    var beta: Double
    var gamma: Double
    var phi: Double
    var period: Int

    /// One-step squared error over the data and the forecasts after it.
    func run(_ y: [Double], horizon: Int) -> (sse: Double, forecast: [Double]) {
        guard !y.isEmpty else { return (.nan, []) }
        // Seasonal initialisation needs two whole periods; with less, no season.
        let m = y.count >= 2 * period + 1 ? period : 0
        var season = [Double](repeating: 0, count: max(m, 1))
        var level: Double
        var trend = 0.0
        var start: Int
        if m > 0 {
            // Initial level and seasonal indices from the first two periods.
            let first = y[0..<m].reduce(0, +) / Double(m)
            let second = y[m..<(2 * m)].reduce(0, +) / Double(m)
            level = first
            trend = beta > 0 ? (second - first) / Double(m) : 0
            for i in 0..<m { season[i] = y[i] - first }
            start = m
        } else {
            level = y[0]
            trend = beta > 0 && y.count > 1 ? y[1] - y[0] : 0
            start = 1
        }
        var sse = 0.0
        for t in start..<y.count {
            let s = m > 0 ? season[t % m] : 0
            let predicted = level + phi * trend + s
            let e = y[t] - predicted
            sse += e * e
            let newLevel = alpha * (y[t] - s) + (1 - alpha) * (level + phi * trend)
            trend = beta * (newLevel - level) + (1 - beta) * phi * trend
            if m > 0 { season[t % m] = gamma * (y[t] - newLevel) + (1 - gamma) * s }
            level = newLevel
        }
        var out: [Double] = []
        out.reserveCapacity(horizon)
        var damp = 0.0
        for h in 1...max(horizon, 1) where horizon > 0 {
            damp += pow(phi, Double(h))
            out.append(level + damp * trend + (m > 0 ? season[(y.count + h - 1) % m] : 0))
        }
        return (sse, out)
    }
}
