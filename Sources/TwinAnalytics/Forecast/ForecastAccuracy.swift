/// Forecast accuracy measures as the M competitions define them.
public enum ForecastAccuracy {
    /// Mean absolute scaled error: the forecast's mean absolute error divided by the in-sample mean
    /// absolute error of the seasonal naive forecast (period `m`) on the training data.
    public static func mase(actual: [Double], forecast: [Double], training: [Double], period m: Int) -> Double {
        let n = min(actual.count, forecast.count)
        guard n > 0, training.count > m else { return .nan }
        let mae = (0..<n).reduce(0.0) { $0 + abs(actual[$1] - forecast[$1]) } / Double(n)
        let scale = naiveScale(training: training, period: m)
        return scale > 0 ? mae / scale : .nan
    }

    /// The in-sample mean absolute error of the seasonal naive forecast (period `m`): MASE's scale.
    public static func naiveScale(training: [Double], period m: Int) -> Double {
        guard training.count > m else { return .nan }
        return (m..<training.count).reduce(0.0) { $0 + abs(training[$1] - training[$1 - m]) } / Double(training.count - m)
    }

    /// The mean Winkler (interval) score of the central intervals `[lo, hi]` at level 1 − `alpha`, scaled
    /// by the training data's seasonal naive error like MASE: the interval's width, plus 2/alpha times how
    /// far an actual falls outside it. Lower is better; a wide interval that always covers pays its width.
    public static func scaledWinkler(actual: [Double], lo: [Double], hi: [Double], alpha: Double, training: [Double], period m: Int) -> Double {
        let n = min(actual.count, lo.count, hi.count)
        let scale = naiveScale(training: training, period: m)
        guard n > 0, scale > 0 else { return .nan }
        var sum = 0.0
        for i in 0..<n {
            sum += hi[i] - lo[i]
            if actual[i] < lo[i] { sum += 2 / alpha * (lo[i] - actual[i]) }
            if actual[i] > hi[i] { sum += 2 / alpha * (actual[i] - hi[i]) }
        }
        return sum / Double(n) / scale
    }

    /// Weighted absolute percentage error: the sum of absolute errors over the sum of absolute actuals
    /// (1 − WAPE is the seed's "prediction accuracy"); nan when the actuals are all 0.
    public static func wape(actual: [Double], forecast: [Double]) -> Double {
        let n = min(actual.count, forecast.count)
        let total = actual.prefix(n).reduce(0) { $0 + abs($1) }
        guard n > 0, total > 0 else { return .nan }
        return (0..<n).reduce(0.0) { $0 + abs(actual[$1] - forecast[$1]) } / total
    }

    /// Symmetric mean absolute percentage error, in percent (0-200); pairs that are both 0 count 0.
    public static func smape(actual: [Double], forecast: [Double]) -> Double {
        let n = min(actual.count, forecast.count)
        guard n > 0 else { return .nan }
        var sum = 0.0
        for i in 0..<n {
            let d = abs(actual[i]) + abs(forecast[i])
            if d > 0 { sum += 200 * abs(actual[i] - forecast[i]) / d }
        }
        return sum / Double(n)
    }
}
