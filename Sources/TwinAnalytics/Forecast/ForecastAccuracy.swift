/// Forecast accuracy measures as the M competitions define them.
public enum ForecastAccuracy {
    /// Mean absolute scaled error: the forecast's mean absolute error divided by the in-sample mean
    /// absolute error of the seasonal naive forecast (period `m`) on the training data.
    public static func mase(actual: [Double], forecast: [Double], training: [Double], period m: Int) -> Double {
        let n = min(actual.count, forecast.count)
        guard n > 0, training.count > m else { return .nan }
        let mae = (0..<n).reduce(0.0) { $0 + abs(actual[$1] - forecast[$1]) } / Double(n)
        let scale = (m..<training.count).reduce(0.0) { $0 + abs(training[$1] - training[$1 - m]) } / Double(training.count - m)
        return scale > 0 ? mae / scale : .nan
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
