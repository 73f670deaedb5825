import TwinCore
import TwinQuery

/// When a forecast crosses a threshold (a resource running out): expected from the point forecast,
/// earliest from the lower 95 % bound, latest from the upper one; nil = not within the horizon.
public struct Exhaustion: Sendable {
    public var threshold: Double
    public var expected: Int64?
    public var earliest: Int64?
    public var latest: Int64?
}

/// The forecast of one series of a PromQL expression.
public struct SeriesForecast: Sendable {
    public var labels: Labels
    public var model: String
    /// The last observed value and its time.
    public var last: (t: Int64, value: Double)
    /// The time of the first observed value: how far back the history the forecast was fitted on reaches.
    public var first: Int64
    public var step: Int64
    /// Forecast points at `last.t + step`, `last.t + 2 step`, ...
    public var points: [ForecastPoint]
    /// Set when a threshold was given and the series falls towards it.
    public var exhaustion: Exhaustion?
}

/// Forecasts of PromQL expressions over the store: the expression is evaluated over the history as a
/// range query (rollup tiers serve long histories), each series is forecast with ``Forecaster``.
public enum QueryForecaster {
    /// The step a history is read at: the largest step of whole minutes that divides a day (so that a
    /// daily season is a whole number of steps and keeps its phase) at or below history / 2,000, at
    /// least a minute; whole hours from an hour up, which the hour tier serves (a 90-day history is read
    /// at 1 h, and 30-day projections come from the hour rollups).
    public static func step(history: Int64) -> Int64 {
        let wanted = history / 2000
        return dayDivisors.last { $0 <= wanted } ?? dayDivisors[0]
    }

    /// Steps of whole minutes that divide a day, ascending.
    static let dayDivisors: [Int64] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 40, 45, 48, 60, 120, 180, 240, 360, 480, 720, 1440].map { $0 * 60_000 }

    public static func forecast(engine: PromQLEngine, expr: Expr, now: Int64, history: Int64, horizon: Int64,
                                exhaustionBelow threshold: Double? = nil) throws -> [SeriesForecast] {
        guard history > 0, horizon > 0 else { throw PromQLError.badData("history and horizon must be positive") }
        let (series, step) = try Self.history(engine: engine, expr: expr, now: now, history: history)
        return try forecast(series, step: step, horizon: horizon, exhaustionBelow: threshold)
    }

    /// The expression over the history, at ``step(history:)``, ending at the last whole step before `now`.
    static func history(engine: PromQLEngine, expr: Expr, now: Int64, history: Int64) throws -> (series: [(labels: Labels, points: [(Int64, Double)])], step: Int64) {
        let step = Self.step(history: history)
        let end = now / step * step
        guard case .matrix(let series) = try engine.range(expr, start: end - history, end: end, step: step) else { return ([], step) }
        return (series, step)
    }

    /// Forecasts of series already read at `step`.
    static func forecast(_ series: [(labels: Labels, points: [(Int64, Double)])], step: Int64, horizon: Int64,
                         exhaustionBelow threshold: Double?) throws -> [SeriesForecast] {
        let steps = Int(min(horizon / step, 100_000))
        guard steps > 0 else { throw PromQLError.badData("horizon shorter than the step (\(step / 1000) s)") }
        // A daily season once two days are there, a weekly one once two weeks are (the forecaster checks
        // the length again).
        let period = Int(86_400_000 / step)
        return series.compactMap { s -> SeriesForecast? in
            guard let first = s.points.first, let last = s.points.last else { return nil }
            let (model, points) = Forecaster.forecast(ForecastHistory.regular(s.points, step: step, period: period), horizon: steps, period: period, week: 7 * period)
            var out = SeriesForecast(labels: s.labels, model: model.description, last: (last.0, last.1), first: first.0, step: step, points: points)
            if let threshold, last.1 > threshold {
                func firstBelow(_ value: (ForecastPoint) -> Double) -> Int64? {
                    points.firstIndex { value($0) <= threshold }.map { last.0 + step * Int64($0 + 1) }
                }
                out.exhaustion = Exhaustion(threshold: threshold, expected: firstBelow(\.mean), earliest: firstBelow(\.lo95), latest: firstBelow(\.hi95))
            }
            return out
        }
    }
}

/// The JSON form of a ``SeriesForecast`` (CLI `forecast --json`, `capacity --json`, `/api/v1/twin/forecast`):
/// times RFC 3339, points `[time, mean, lo80, hi80, lo95, hi95]`.
public struct SeriesForecastJSON: Encodable {
    public struct Exhaustion: Encodable {
        var threshold: Double
        var expected: String?
        var earliest: String?
        var latest: String?
    }
    var metric: [String: String]
    var model: String
    var stepSeconds: Double
    var last: Double
    var lastTime: String
    var points: [[String]]
    var exhaustion: Exhaustion?
    enum CodingKeys: String, CodingKey { case metric, model, stepSeconds = "step_seconds", last, lastTime = "last_time", points, exhaustion }

    public init(_ f: SeriesForecast) {
        metric = Dictionary(uniqueKeysWithValues: f.labels.pairs.map { ($0.name, $0.value) })
        model = f.model
        stepSeconds = Double(f.step) / 1000
        last = f.last.value
        lastTime = TwinTime.rfc3339(f.last.t)
        points = f.points.enumerated().map { i, p in
            [TwinTime.rfc3339(f.last.t + f.step * Int64(i + 1))] + [p.mean, p.lo80, p.hi80, p.lo95, p.hi95].map(PromNumber.format)
        }
        exhaustion = f.exhaustion.map { Exhaustion(threshold: $0.threshold, expected: $0.expected.map(TwinTime.rfc3339),
                                                   earliest: $0.earliest.map(TwinTime.rfc3339), latest: $0.latest.map(TwinTime.rfc3339)) }
    }
}
