import Foundation
import TwinCore

/// The PromQL functions HostTwin implements, with Prometheus 2.42's semantics (extrapolation in
/// `rate`, counter resets, Kahan summation in `*_over_time` and regression).
public enum PromFunctions {
    /// Argument types (the last repeats when `variadic`), how many trailing ones may be left out, and
    /// the result type.
    public struct Signature: Sendable {
        public var args: [ValueType]
        public var optional = 0
        public var variadic = false
        public var returns: ValueType = .vector
    }

    static let table: [String: Signature] = {
        var t: [String: Signature] = [:]
        for f in ["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes",
                  "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
                  "last_over_time", "stddev_over_time", "stdvar_over_time", "present_over_time", "absent_over_time"] {
            t[f] = Signature(args: [.matrix])
        }
        t["quantile_over_time"] = Signature(args: [.scalar, .matrix])
        t["predict_linear"] = Signature(args: [.matrix, .scalar])
        t["holt_winters"] = Signature(args: [.matrix, .scalar, .scalar])
        for f in ["abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn", "sort", "sort_desc", "absent",
                  "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad",
                  "histogram_count", "histogram_sum"] {
            t[f] = Signature(args: [.vector])
        }
        for f in ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"] {
            t[f] = Signature(args: [.vector], optional: 1)
        }
        t["histogram_fraction"] = Signature(args: [.scalar, .scalar, .vector])
        t["pi"] = Signature(args: [], returns: .scalar)
        t["round"] = Signature(args: [.vector, .scalar], optional: 1)
        t["clamp"] = Signature(args: [.vector, .scalar, .scalar])
        t["clamp_min"] = Signature(args: [.vector, .scalar])
        t["clamp_max"] = Signature(args: [.vector, .scalar])
        t["label_replace"] = Signature(args: [.vector, .string, .string, .string, .string])
        t["label_join"] = Signature(args: [.vector, .string, .string, .string], optional: 1, variadic: true)
        t["time"] = Signature(args: [], returns: .scalar)
        t["timestamp"] = Signature(args: [.vector])
        t["vector"] = Signature(args: [.scalar])
        t["scalar"] = Signature(args: [.vector], returns: .scalar)
        t["histogram_quantile"] = Signature(args: [.scalar, .vector])
        return t
    }()

    /// The signature of function `name`, or nil when there is no such function.
    public static func signature(_ name: String) -> Signature? { table[name] }

    // MARK: Range-vector functions

    /// A function of one range vector argument over one series' points: `(t, v, rangeStart, rangeEnd,
    /// evalTime, param)`; nil drops the series. `rangeStart`/`rangeEnd` bound the selection (for
    /// extrapolation), `param` is the scalar argument.
    typealias RangeFunction = (ArraySlice<Int64>, ArraySlice<Double>, Int64, Int64, Int64, Double) -> Double?

    /// The implementation of range-vector function `name`, resolved once per query rather than per point.
    static func rangeFunction(_ name: String) -> RangeFunction? {
        switch name {
        case "rate": return { t, v, a, b, _, _ in extrapolatedRate(t, v, a, b, counter: true, rate: true) }
        case "increase": return { t, v, a, b, _, _ in extrapolatedRate(t, v, a, b, counter: true, rate: false) }
        case "delta": return { t, v, a, b, _, _ in extrapolatedRate(t, v, a, b, counter: false, rate: false) }
        case "irate", "idelta":
            let isRate = name == "irate"
            return { t, v, _, _, _, _ in
                guard v.count >= 2 else { return nil }
                let last = v[v.endIndex - 1], prev = v[v.endIndex - 2]
                let dt = t[t.endIndex - 1] - t[t.endIndex - 2]
                guard dt != 0 else { return nil }
                if !isRate { return last - prev }
                return (last < prev ? last : last - prev) / (Double(dt) / 1000)
            }
        case "deriv":
            return { t, v, _, _, _, _ in v.count < 2 ? nil : linearRegression(t, v, interceptTime: t[t.startIndex]).slope }
        case "predict_linear":
            return { t, v, _, _, evalTime, param in
                guard v.count >= 2 else { return nil }
                let (slope, intercept) = linearRegression(t, v, interceptTime: evalTime)
                return slope * param + intercept
            }
        case "resets":
            return { _, v, _, _, _, _ in
                var n = 0.0
                var prev = v.first!
                for x in v.dropFirst() { if x < prev { n += 1 }; prev = x }
                return n
            }
        case "changes":
            return { _, v, _, _, _, _ in
                var n = 0.0
                var prev = v.first!
                for x in v.dropFirst() { if x != prev && !(x.isNaN && prev.isNaN) { n += 1 }; prev = x }
                return n
            }
        case "avg_over_time":
            return { _, v, _, _, _, _ in
                var mean = 0.0, count = 0.0, c = 0.0
                for x in v {
                    count += 1
                    if mean.isInfinite {
                        if x.isInfinite && (mean > 0) == (x > 0) { continue }
                        if !x.isInfinite && !x.isNaN { continue }
                    }
                    (mean, c) = kahanSumInc(x / count - mean / count, mean, c)
                }
                return mean.isInfinite ? mean : mean + c
            }
        case "min_over_time":
            return { _, v, _, _, _, _ in
                var m = v.first!
                for x in v where x < m || m.isNaN { m = x }
                return m
            }
        case "max_over_time":
            return { _, v, _, _, _, _ in
                var m = v.first!
                for x in v where x > m || m.isNaN { m = x }
                return m
            }
        case "sum_over_time":
            return { _, v, _, _, _, _ in
                var s = 0.0, c = 0.0
                for x in v { (s, c) = kahanSumInc(x, s, c) }
                return s.isInfinite ? s : s + c
            }
        case "count_over_time": return { _, v, _, _, _, _ in Double(v.count) }
        case "present_over_time": return { _, _, _, _, _, _ in 1 }
        case "last_over_time": return { _, v, _, _, _, _ in v.last! }
        case "stddev_over_time", "stdvar_over_time":
            let sd = name == "stddev_over_time"
            return { _, v, _, _, _, _ in
                var count = 0.0, mean = 0.0, cMean = 0.0, aux = 0.0, cAux = 0.0
                for x in v {
                    count += 1
                    let delta = x - (mean + cMean)
                    (mean, cMean) = kahanSumInc(delta / count, mean, cMean)
                    (aux, cAux) = kahanSumInc(delta * (x - (mean + cMean)), aux, cAux)
                }
                let variance = (aux + cAux) / count
                return sd ? variance.squareRoot() : variance
            }
        case "quantile_over_time":
            return { _, v, _, _, _, q in quantile(q, Array(v)) }
        default:
            return nil
        }
    }

    /// Prometheus' `rate`/`increase`/`delta`: the change over the selected points, corrected for
    /// counter resets, extrapolated towards the range boundaries when the points come near them.
    static func extrapolatedRate(_ t: ArraySlice<Int64>, _ v: ArraySlice<Double>, _ rangeStart: Int64, _ rangeEnd: Int64,
                                 counter: Bool, rate: Bool) -> Double? {
        guard v.count >= 2 else { return nil }
        let first = v[v.startIndex], last = v[v.endIndex - 1]
        let firstT = t[t.startIndex], lastT = t[t.endIndex - 1]
        var result = last - first
        if counter {
            var prev = first
            for x in v.dropFirst() { if x < prev { result += prev }; prev = x }
        }
        var durationToStart = (Double(firstT) - Double(rangeStart)) / 1000
        let durationToEnd = (Double(rangeEnd) - Double(lastT)) / 1000
        let sampledInterval = Double(lastT - firstT) / 1000
        let averageDurationBetweenSamples = sampledInterval / Double(v.count - 1)
        if counter && result > 0 && first >= 0 {
            let durationToZero = sampledInterval * (first / result)
            if durationToZero < durationToStart { durationToStart = durationToZero }
        }
        let threshold = averageDurationBetweenSamples * 1.1
        var extrapolateToInterval = sampledInterval
        extrapolateToInterval += durationToStart < threshold ? durationToStart : averageDurationBetweenSamples / 2
        extrapolateToInterval += durationToEnd < threshold ? durationToEnd : averageDurationBetweenSamples / 2
        result *= extrapolateToInterval / sampledInterval
        if rate { result /= (Double(rangeEnd) - Double(rangeStart)) / 1000 }
        return result
    }

    /// Least-squares slope (per second) and intercept at `interceptTime`, with Kahan summation.
    static func linearRegression(_ t: ArraySlice<Int64>, _ v: ArraySlice<Double>, interceptTime: Int64) -> (slope: Double, intercept: Double) {
        var n = 0.0, sumX = 0.0, cX = 0.0, sumY = 0.0, cY = 0.0, sumXY = 0.0, cXY = 0.0, sumX2 = 0.0, cX2 = 0.0
        let initY = v[v.startIndex]
        var constY = true
        for (i, ti) in zip(v.indices, t) {
            let y = v[i]
            if constY && i > v.startIndex && y != initY { constY = false }
            n += 1
            let x = Double(ti - interceptTime) / 1000
            (sumX, cX) = kahanSumInc(x, sumX, cX)
            (sumY, cY) = kahanSumInc(y, sumY, cY)
            (sumXY, cXY) = kahanSumInc(x * y, sumXY, cXY)
            (sumX2, cX2) = kahanSumInc(x * x, sumX2, cX2)
        }
        if constY { return initY.isInfinite ? (.nan, .nan) : (0, initY) }
        sumX += cX; sumY += cY; sumXY += cXY; sumX2 += cX2
        let covXY = sumXY - sumX * sumY / n
        let varX = sumX2 - sumX * sumX / n
        let slope = covXY / varX
        return (slope, sumY / n - slope * sumX / n)
    }

    /// Neumaier's improved Kahan summation step.
    @inline(__always)
    static func kahanSumInc(_ inc: Double, _ sum: Double, _ c: Double) -> (Double, Double) {
        let t = sum + inc
        var c = c
        if abs(sum) >= abs(inc) { c += (sum - t) + inc } else { c += (inc - t) + sum }
        return (t, c)
    }

    /// The φ-quantile of `values` with linear interpolation between ranks, as Prometheus computes it.
    static func quantile(_ q: Double, _ values: [Double]) -> Double {
        if values.isEmpty || q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        let sorted = values.sorted { a, b in a < b || (a.isNaN && !b.isNaN) }
        let n = Double(sorted.count)
        let rank = q * (n - 1)
        let lower = max(0, rank.rounded(.down))
        let upper = min(n - 1, lower + 1)
        let weight = rank - rank.rounded(.down)
        return sorted[Int(lower)] * (1 - weight) + sorted[Int(upper)] * weight
    }

    // MARK: Instant-vector functions

    /// Element-wise math functions; nil when `name` is not one.
    static func elementwise(_ name: String) -> ((Double) -> Double)? {
        switch name {
        case "abs": return { abs($0) }
        case "ceil": return { $0.rounded(.up) }
        case "floor": return { $0.rounded(.down) }
        case "sqrt": return { $0.squareRoot() }
        case "exp": return { Foundation.exp($0) }
        case "ln": return { Foundation.log($0) }
        case "log2": return { Foundation.log2($0) }
        case "log10": return { Foundation.log10($0) }
        case "sgn": return { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 }
        case "sin": return { Foundation.sin($0) }
        case "cos": return { Foundation.cos($0) }
        case "tan": return { Foundation.tan($0) }
        case "asin": return { Foundation.asin($0) }
        case "acos": return { Foundation.acos($0) }
        case "atan": return { Foundation.atan($0) }
        case "sinh": return { Foundation.sinh($0) }
        case "cosh": return { Foundation.cosh($0) }
        case "tanh": return { Foundation.tanh($0) }
        case "asinh": return { Foundation.asinh($0) }
        case "acosh": return { Foundation.acosh($0) }
        case "atanh": return { Foundation.atanh($0) }
        case "deg": return { $0 * 180 / Double.pi }
        case "rad": return { $0 * Double.pi / 180 }
        default: return nil
        }
    }

    /// The calendar functions (`hour`, `day_of_week`, ...) of a Unix time in seconds, in UTC, as Go's
    /// `time.Unix(int64(v), 0).UTC()` gives them; nil when `name` is not one. A value that is not a
    /// finite number of seconds within ±2^62 gives NaN (Go's conversion of it is undefined).
    static func calendar(_ name: String) -> ((Double) -> Double)? {
        let part: (CivilTime) -> Int
        switch name {
        case "year": part = { $0.year }
        case "month": part = { $0.month }
        case "day_of_month": part = { $0.day }
        case "day_of_week": part = { $0.weekday }
        case "day_of_year": part = { $0.dayOfYear }
        case "days_in_month": part = { $0.daysInMonth }
        case "hour": part = { $0.secondOfDay / 3600 }
        case "minute": part = { $0.secondOfDay % 3600 / 60 }
        default: return nil
        }
        return { v in
            guard v.isFinite, abs(v) < 0x1p62 else { return .nan }
            return Double(part(CivilTime(unixSeconds: Int64(v))))
        }
    }

    /// `holt_winters(v, sf, tf)`: double exponential smoothing of one series' points, Prometheus'
    /// recurrence (the trend starts as the first difference); nil with fewer than two points.
    static func holtWinters(_ v: ArraySlice<Double>, smoothing sf: Double, trend tf: Double) -> Double? {
        guard v.count >= 2 else { return nil }
        var s0 = 0.0, s1 = v[v.startIndex]
        var b = v[v.startIndex + 1] - v[v.startIndex]
        for (k, x) in v.dropFirst().enumerated() {
            if k > 0 { b = tf * (s1 - s0) + (1 - tf) * b }
            (s0, s1) = (s1, sf * x + (1 - sf) * (s1 + b))
        }
        return s1
    }

    /// `x` clamped to `[lo, hi]` with Go's math.Max/Min: NaN wins.
    static func clamp(_ x: Double, _ lo: Double, _ hi: Double) -> Double {
        x.isNaN || lo.isNaN || hi.isNaN ? .nan : Swift.min(hi, Swift.max(lo, x))
    }

    /// `round(v, to_nearest)`: Go's `math.Floor(v*inv + 0.5) / inv`.
    static func round(_ x: Double, toNearest: Double) -> Double {
        let inv = 1.0 / toNearest
        return (x * inv + 0.5).rounded(.down) / inv
    }

    /// `histogram_quantile` over classic buckets: `buckets` are (upper bound, cumulative count).
    static func bucketQuantile(_ q: Double, _ input: [(Double, Double)]) -> Double {
        if q.isNaN { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        var buckets = input.sorted { $0.0 < $1.0 }
        guard let top = buckets.last, top.0 == .infinity else { return .nan }
        // Coalesce equal bounds, then force the counts to be monotonic.
        var merged: [(Double, Double)] = []
        for b in buckets {
            if let l = merged.last, l.0 == b.0 { merged[merged.count - 1].1 += b.1 } else { merged.append(b) }
        }
        buckets = merged
        var maxCount = -Double.infinity
        for i in buckets.indices {
            if buckets[i].1 > maxCount { maxCount = buckets[i].1 } else if buckets[i].1 < maxCount { buckets[i].1 = maxCount }
        }
        guard buckets.count >= 2 else { return .nan }
        let observations = buckets[buckets.count - 1].1
        guard observations != 0 else { return .nan }
        var rank = q * observations
        var b = 0
        while b < buckets.count - 1, !(buckets[b].1 >= rank) { b += 1 }
        if b == buckets.count - 1 { return buckets[buckets.count - 2].0 }
        if b == 0 && buckets[0].0 <= 0 { return buckets[0].0 }
        var bucketStart = 0.0
        let bucketEnd = buckets[b].0
        var count = buckets[b].1
        if b > 0 {
            bucketStart = buckets[b - 1].0
            count -= buckets[b - 1].1
            rank -= buckets[b - 1].1
        }
        return bucketStart + (bucketEnd - bucketStart) * (rank / count)
    }
}

/// A Unix time broken down in the proleptic Gregorian calendar, UTC (Howard Hinnant's days-to-civil).
struct CivilTime {
    var year: Int, month: Int, day: Int
    /// 0 = Sunday, as Go's `time.Weekday`.
    var weekday: Int
    var dayOfYear: Int
    var secondOfDay: Int

    init(unixSeconds s: Int64) {
        let days = s >= 0 ? s / 86_400 : (s - 86_399) / 86_400
        secondOfDay = Int(s - days * 86_400)
        weekday = Int(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400 + (month <= 2 ? 1 : 0))
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][month - 1]
        dayOfYear = before + day + (leap && month > 2 ? 1 : 0)
    }

    var daysInMonth: Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
