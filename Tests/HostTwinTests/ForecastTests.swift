import Foundation
import Testing
import TwinAnalytics
import TwinCore
import TwinQuery

/// The forecaster on series whose future is known, and the accuracy measures on hand-computed cases.
@Suite struct ForecastTests {
    @Test func followsASeasonalSeries() {
        let m = 48
        var rng = SystemRandomNumberGenerator()
        let y = (0..<(10 * m)).map { i -> Double in
            100 + 0.05 * Double(i) + 20 * sin(2 * .pi * Double(i) / Double(m)) + Double.random(in: -1...1, using: &rng)
        }
        let train = Array(y[..<(8 * m)]), test = Array(y[(8 * m)...])
        let (model, points) = Forecaster.forecast(train, horizon: test.count, period: m)
        let mase = ForecastAccuracy.mase(actual: test, forecast: points.map(\.mean), training: train, period: m)
        #expect(mase < 0.8, "MASE \(mase) with \(model)")
        if case .holtWinters(_, _, _, _, let period) = model { #expect(period == m) } else if case .seasonalNaive = model {} else {
            Issue.record("a seasonal model expected, got \(model)")
        }
        let inside95 = zip(test, points).filter { $0 >= $1.lo95 && $0 <= $1.hi95 }.count
        #expect(Double(inside95) / Double(test.count) > 0.8, "95 % intervals hold \(inside95) of \(test.count)")
        #expect(points.allSatisfy { $0.lo95 <= $0.lo80 && $0.lo80 <= $0.mean && $0.mean <= $0.hi80 && $0.hi80 <= $0.hi95 })
    }

    @Test func extendsALine() {
        let y = (0..<200).map { 5 + 2 * Double($0) }
        let (_, points) = Forecaster.forecast(y, horizon: 10, period: 0)
        for (h, p) in points.enumerated() { #expect(abs(p.mean - (5 + 2 * Double(200 + h))) < 1e-6, "step \(h): \(p.mean)") }
    }

    @Test func survivesDegenerateInput() {
        #expect(Forecaster.forecast([], horizon: 3, period: 10).points.count == 3)
        #expect(Forecaster.forecast([1, .nan, 2], horizon: 2, period: 10).points.count == 2)
        #expect(Forecaster.forecast(Array(repeating: 7, count: 100), horizon: 5, period: 12).points.allSatisfy { $0.mean == 7 })
        #expect(Forecaster.forecast((0..<30).map(Double.init), horizon: 0, period: 24).points.isEmpty)
    }

    @Test func accuracyMeasures() {
        // In-sample seasonal naive (m = 1) errors: |2-1| |4-2| = 1.5 mean; forecast errors 1, 3: mean 2.
        #expect(ForecastAccuracy.mase(actual: [5, 5], forecast: [4, 8], training: [1, 2, 4], period: 1) == 2 / 1.5)
        let expected: Double = 200.0 * 50.0 / 150.0 / 2.0
        #expect(ForecastAccuracy.smape(actual: [100, 0], forecast: [50, 0]) == expected)
        #expect(ForecastAccuracy.mase(actual: [1], forecast: [1], training: [3, 3, 3], period: 1).isNaN)
    }
}

/// Forecasts of stored series through PromQL: a draining filesystem's time to exhaustion.
@Suite struct QueryForecastTests {
    @Test func predictsWhenAFilesystemFills() throws {
        let t0: Int64 = 1_700_000_000_000
        var lines: [String] = []
        for i in 0...120 {
            let t = t0 + Int64(i) * 60_000
            lines.append("avail_bytes{mountpoint=\"/\"} \(10_000 - 10 * i) \(t)")
            lines.append("avail_bytes{mountpoint=\"/data\"} 5000 \(t)")
        }
        let (store, dir) = try storeWith(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        let end = t0 + 120 * 60_000
        let forecasts = try QueryForecaster.forecast(engine: engine, expr: try PromQLParser.parse("avail_bytes"), now: end,
                                                     history: 2 * 3_600_000, horizon: 86_400_000, exhaustionBelow: 0)
        #expect(forecasts.count == 2)
        let root = try #require(forecasts.first { $0.labels["mountpoint"] == "/" })
        // 8,800 left, 10 a minute: empty 880 minutes after the last sample.
        let expected = try #require(root.exhaustion?.expected, "\(root.model)")
        #expect(abs(expected - (end + 880 * 60_000)) <= 2 * root.step, "expected \(TwinTime.rfc3339(expected)) with \(root.model)")
        let e = try #require(root.exhaustion)
        #expect((e.earliest ?? .max) <= expected && expected <= (e.latest ?? .max))
        let flat = try #require(forecasts.first { $0.labels["mountpoint"] == "/data" })
        #expect(flat.exhaustion?.expected == nil, "a flat filesystem does not fill")
        // The JSON form carries the times.
        let json = String(decoding: try JSONEncoder().encode(SeriesForecastJSON(root)), as: UTF8.self)
        #expect(json.contains("\"exhaustion\"") && json.contains(TwinTime.rfc3339(expected)))
    }
}
