/// How a stored series becomes the regular history a forecaster reads: one value per step from the
/// first point to the last, gaps (the twin was stopped, a collector failed) filled so that the seasonal
/// phase is kept. Production forecasts (`forecast`, `capacity`, the dashboard, the anomaly scan's
/// "filesystem filling") and `bench forecast --data-dir` both read history through this.
public enum ForecastHistory {
    /// `points` (time order, times on multiples of `step` as a PromQL range query returns them) as
    /// values at every step from the first point to the last. A missing step takes the value one
    /// `period` earlier when the history reaches back that far (the same time yesterday for a daily
    /// season), otherwise the last value before the gap. Closing the gap up instead would shift every
    /// later value's phase by the gap's length.
    public static func regular(_ points: [(Int64, Double)], step: Int64, period: Int) -> [Double] {
        guard let first = points.first, let last = points.last, step > 0 else { return [] }
        let count = Int((last.0 - first.0) / step) + 1
        var values = [Double](repeating: .nan, count: count)
        for (t, v) in points {
            let i = Int((t - first.0) / step)
            if i >= 0, i < count { values[i] = v }
        }
        var previous = first.1
        for i in values.indices {
            if values[i].isNaN {
                values[i] = period > 0 && i >= period ? values[i - period] : previous
            }
            previous = values[i]
        }
        return values
    }
}
