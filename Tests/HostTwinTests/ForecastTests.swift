import Foundation
import Testing
@testable import TwinAnalytics
import TwinCore
import TwinQuery
@testable import TwinStorage

/// The forecaster on series whose future is known, and the accuracy measures on hand-computed cases.
@Suite struct ForecastTests {
    @Test func followsASeasonalSeries() {
        let m = 48
        // Seeded noise: the same series every run (model choice on a hold-out is sensitive to the draw).
        var rng = SeededRandom(seed: 7)
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
        // Calibration is measured by bench forecast on NAB (93 % inside the nominal 95 %); this checks
        // that the intervals are useful on one series, not that they are calibrated.
        #expect(Double(inside95) / Double(test.count) > 0.6, "95 % intervals hold \(inside95) of \(test.count)")
        #expect(points.allSatisfy { $0.lo95 <= $0.lo80 && $0.lo80 <= $0.mean && $0.mean <= $0.hi80 && $0.hi80 <= $0.hi95 })
    }

    /// A business-hours load: a daily bump on weekdays only. With two weeks of history the weekly
    /// profile is learnt and the weekend is forecast flat; the daily season alone forecasts a bump.
    @Test func learnsAWeek() {
        let m = 24, w = 7 * m
        var rng = SeededRandom(seed: 3)
        let y = (0..<(5 * w)).map { i -> Double in
            let day = (i / m) % 7, hour = i % m
            let busy = day < 5 && hour >= 9 && hour < 17 ? 40.0 : 0
            return 10 + busy + Double.random(in: -1...1, using: &rng)
        }
        // Forecast the two weekend days from the end of Friday.
        let cut = 4 * w + 5 * m
        let train = Array(y[..<cut]), test = Array(y[cut..<(cut + 2 * m)])
        let weekly = Forecaster.forecast(train, horizon: test.count, period: m, week: w)
        let daily = Forecaster.forecast(train, horizon: test.count, period: m)
        let maseWeekly = ForecastAccuracy.mase(actual: test, forecast: weekly.points.map(\.mean), training: train, period: m)
        let maseDaily = ForecastAccuracy.mase(actual: test, forecast: daily.points.map(\.mean), training: train, period: m)
        if case .weekly = weekly.model {} else { Issue.record("the weekly model expected, got \(weekly.model)") }
        #expect(maseWeekly < 0.7 && maseDaily > 3 * maseWeekly, "weekly \(maseWeekly) (\(weekly.model)), daily only \(maseDaily) (\(daily.model))")
    }

    /// A deployment moves the level by +30 half a day before the forecast: the old days' level no longer
    /// predicts, the forecast continues from the new one.
    @Test func followsALevelShift() throws {
        let m = 48
        var rng = SeededRandom(seed: 11)
        let shiftAt = 10 * m - m / 2
        let y = (0..<(11 * m)).map { i -> Double in
            50 + 10 * sin(2 * .pi * Double(i) / Double(m)) + (i >= shiftAt ? 30 : 0) + Double.random(in: -1...1, using: &rng)
        }
        let train = Array(y[..<(10 * m)]), test = Array(y[(10 * m)...])
        let found = try #require(Forecaster.levelShift(train, period: m))
        #expect(abs(found.at - shiftAt) <= 2 && abs(found.by - 30) < 3, "\(found)")
        let (model, points) = Forecaster.forecast(train, horizon: test.count, period: m)
        let mase = ForecastAccuracy.mase(actual: test, forecast: points.map(\.mean), training: train, period: m)
        let without = Forecaster.forecast(train, horizon: test.count, period: m, levelShifts: false)
        let maseWithout = ForecastAccuracy.mase(actual: test, forecast: without.points.map(\.mean), training: train, period: m)
        #expect(mase < 0.8 && mase < maseWithout, "MASE \(mase) with \(model); \(maseWithout) without level shifts (\(without.model))")
        // No shift is found in a series without one.
        #expect(Forecaster.levelShift(Array(y[..<(shiftAt - m)]), period: m) == nil)
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
    /// Histories are read at steps that divide a day (a daily season stays in phase), whole hours from an
    /// hour up: 30 days at 20 minutes (21.6 before, a 68.57-step "day"), 90 days at an hour.
    @Test func stepsDivideADay() {
        let day: Int64 = 86_400_000
        #expect(QueryForecaster.step(history: 2 * 3_600_000) == 60_000)
        #expect(QueryForecaster.step(history: 7 * day) == 300_000)
        #expect(QueryForecaster.step(history: 30 * day) == 1_200_000)
        #expect(QueryForecaster.step(history: 90 * day) == 3_600_000)
        #expect(QueryForecaster.step(history: 400 * day) == 4 * 3_600_000)
        for d in [1, 3, 10, 30, 45, 90, 200, 730] as [Int64] { #expect(day % QueryForecaster.step(history: d * day) == 0) }
    }

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

    /// Downtime does not shift the daily phase: gaps are filled from the day before (ForecastHistory).
    @Test func aGapKeepsTheSeasonalPhase() throws {
        let day: Int64 = 86_400_000
        let t0: Int64 = 1_700_000_000_000 / day * day
        let wave = { (t: Int64) in 50 + 40 * sin(2 * Double.pi * Double(t % day) / Double(day)) }
        var lines: [String] = []
        for i in 0..<(3 * 288) {
            let t = t0 + Int64(i) * 300_000
            // Stopped for six hours on the last day.
            if t >= t0 + 2 * day + 6 * 3_600_000, t < t0 + 2 * day + 12 * 3_600_000 { continue }
            lines.append("load \(wave(t)) \(t)")
        }
        let (store, dir) = try storeWith(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        let end = t0 + 3 * day - 300_000
        let f = try #require(try QueryForecaster.forecast(engine: engine, expr: try PromQLParser.parse("load"), now: end, history: 3 * day, horizon: day).first)
        // The next day, point by point: within 5 % of the wave's amplitude (closing the six hours up would
        // put the forecast a quarter day out of phase: errors up to 40).
        var worst = 0.0
        for (i, p) in f.points.enumerated() { worst = max(worst, abs(p.mean - wave(f.last.t + f.step * Int64(i + 1)))) }
        #expect(worst < 4, "worst error \(worst) with \(f.model)")
        // The filling itself.
        #expect(ForecastHistory.regular([(0, 1), (10, 2), (40, 5)], step: 10, period: 0) == [1, 2, 2, 2, 5])
        #expect(ForecastHistory.regular([(0, 1), (10, 2), (20, 3), (50, 6)], step: 10, period: 2) == [1, 2, 3, 2, 3, 6])
        #expect(ForecastHistory.regular([], step: 10, period: 2).isEmpty)
    }
}

/// The anomaly scan of a store: a level shift alerts at the shift, a crash-looping service is warned of.
@Suite struct AnomalyScanTests {
    @Test func findsAShiftAndARestartLoop() throws {
        let t0: Int64 = 1_800_000_000_000
        var rng = SeededRandom(seed: 11)
        let shift = t0 + 5 * 3_600_000
        let (store, dir) = try storeOfTicks("hosttwin-anomalies", t0: t0, interval: 10_000, ticks: (6 * 360)) { i, t in
            var obs = Observation(timestamp: t)
            obs.add("queue_depth", .empty, (t >= shift ? 80 : 10) + Double.random(in: -2...2, using: &rng))
            obs.counter("requests_total", .empty, Double(i) * 5)
            // Fifty short-lived series of the first hour (exited processes): they must not dilute the rate.
            if i < 360 { for n in 0..<50 { obs.add("old_gauge", Labels(["n": String(n)]), Double(n)) } }
            // After the shift a service dies 30 s after each start and its service manager starts it again
            // at once (within the tick).
            var procs = [Entity(kind: .processes, key: "1@0", attributes: ["pid": 1, "ppid": 0, "name": "init", "command": "/sbin/init"])]
            if t >= shift {
                let run = i / 3, start = t0 + Int64(run) * 30_000
                procs.append(Entity(kind: .processes, key: "\(1000 + run)@\(start)", attributes: ["pid": .int(Int64(1000 + run)), "ppid": 1, "name": "flaky", "command": "/usr/bin/flaky --serve",
                                                                                 "unit": "flaky.service", "after_exit": "exit 1"]))
                // A polling loop (`while …; do sleep 30; done`) at the same cadence: its program exits 0.
                procs.append(Entity(kind: .processes, key: "\(40_000 + run)@\(start)", attributes: ["pid": .int(Int64(40_000 + run)), "ppid": 900, "name": "sleep", "command": "sleep 30",
                                                                                   "after_exit": "exit 0"]))
                // The same cadence from a daemon adopted by init outside any service (a browser's crash
                // handler, one per launch): not a loop.
                procs.append(Entity(kind: .processes, key: "\(5000 + run)@\(start)", attributes: ["pid": .int(Int64(5000 + run)), "ppid": 1, "name": "crashpad", "command": "/usr/lib/chromium/chrome_crashpad_handler"]))
            }
            // A job a parent launches every 80 s, for 30 s: restarted long after it exits, not a loop.
            if t >= shift, i % 8 < 3 {
                let start = t - Int64(i % 8) * 10_000
                procs.append(Entity(kind: .processes, key: "\(9000 + i / 8)@\(start)", attributes: ["pid": .int(Int64(9000 + i / 8)), "ppid": 700, "name": "job", "command": "/usr/bin/job"]))
            }
            // A launcher running jobs back to back, one of 10 s then one of 40 s, restarted at once: runs
            // of every length are jobs, not a program failing the same way each time.
            if t >= shift {
                let o = (t - shift) % 50_000, p = (t - shift) / 50_000
                let start = shift + p * 50_000 + (o < 10_000 ? 0 : 10_000)
                procs.append(Entity(kind: .processes, key: "\(20_000 + 2 * p + (o < 10_000 ? 0 : 1))@\(start)",
                                    attributes: ["pid": .int(20_000 + 2 * p + (o < 10_000 ? 0 : 1)), "ppid": 800, "name": "task", "command": "/usr/bin/task"]))
            }
            obs.set(.processes, procs)
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let end = t0 + 6 * 3_600_000 - 10_000
        let report = try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 4 * 3_600_000)
        let shiftAlerts = report.alerts.filter { $0.series == "queue_depth" }
        // The shift alerts within five minutes of happening (noise may raise a rare alert before it: the
        // detector flags new extremes).
        let times = shiftAlerts.compactMap { TwinTime.parseRFC3339($0.time) }
        #expect(times.contains { $0 >= shift && $0 <= shift + 5 * 60_000 }, "alerts at \(shiftAlerts.map(\.time)), shift at \(TwinTime.rfc3339(shift))")
        #expect(times.filter { $0 < shift }.count <= 2, "few alerts on noise: \(shiftAlerts.map(\.time))")
        #expect(!report.alerts.contains { $0.series == "requests_total" }, "a steady counter rate raises nothing")
        #expect(report.warnings.contains { $0.kind == "restarting in a loop" && $0.subject == "/usr/bin/flaky --serve" }, "\(report.warnings)")
        #expect(!report.warnings.contains { $0.subject == "/sbin/init" })
        #expect(!report.warnings.contains { $0.subject.contains("crashpad") || $0.subject == "/usr/bin/job" || $0.subject == "/usr/bin/task" || $0.subject == "sleep 30" }, "\(report.warnings)")
        #expect(report.warnings.first { $0.subject == "/usr/bin/flaky --serve" }?.evidence.contains("restarts after a failed exit") == true)
        // The host rate divides by the series live in the window (2), not every series stored (52).
        #expect(report.series == 52 && report.liveSeries == 2, "\(report.series) stored, \(report.liveSeries) live")
        #expect(report.rate.contains { $0.rate >= AnomalyScan.hostThreshold } && !report.hostAnomalous.isEmpty)
        // A deadline already passed stops the scan with a timeout.
        #expect(throws: PromQLError.self) { try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 4 * 3_600_000, deadline: 0) }
    }
}



/// The detectors' state is saved with the store: a restart continues exactly where it stopped.
@Suite struct DetectorStateTests {
    @Test func aRestoredDetectorScoresAsIfItNeverStopped() throws {
        var rng = SeededRandom(seed: 3)
        let xs = (0..<2000).map { i in 10 + sin(Double(i) / 30) + Double.random(in: -0.3...0.3, using: &rng) + (i > 1500 ? 5 : 0) }
        var continuous = NoveltyDetector()
        let whole = xs.enumerated().map { continuous.score($1, at: Int64($0) * 60) }
        var first = NoveltyDetector()
        var split = xs.prefix(1000).enumerated().map { first.score($1, at: Int64($0) * 60) }
        let bytes = first.state
        var restored = try! #require(NoveltyDetector(state: bytes))
        split += xs.dropFirst(1000).enumerated().map { restored.score($1, at: Int64($0 + 1000) * 60) }
        #expect(split == whole && whole.contains { $0 >= NoveltyDetector.alertThreshold })
        #expect(restored.state == continuous.state)
        // Format 3 (the default) writes format 2's fields as their significant bytes; format 2 (only the
        // daily profile's seen slots, 205 bytes for a detector that has seen none) and format 1 (every slot as
        // a double, NaN for unseen ones) still restore, to the same detector.
        let fresh = NoveltyDetector().state, fresh2 = NoveltyDetector().state(format: 2)
        #expect(fresh2.count == 205 && continuous.state(format: 2).count == 973)
        #expect(fresh.count * 2 < fresh2.count && bytes.count < first.state(format: 2).count && continuous.state.count < 973,
                "\(fresh.count) \(bytes.count) \(continuous.state.count)")
        let formatOne = [1] + Array(fresh2[1..<(fresh2.count - 12)]) + [UInt8](repeating: 0, count: 96 * 8).enumerated().map { i, _ in
            withUnsafeBytes(of: Double.nan.bitPattern.littleEndian) { $0[i % 8] }
        }
        #expect(NoveltyDetector(state: formatOne)?.state == fresh)
        #expect(NoveltyDetector(state: fresh2)?.state == fresh)
        #expect(NoveltyDetector(state: first.state(format: 2))?.state == bytes, "format 2 restores to the same detector")
        #expect(NoveltyDetector(state: bytes)?.state == bytes, "a profile partly seen comes back as it was")
        // Bytes that are not a state: no detector, no crash. A compact word's header cannot say more than 8 bytes.
        for bad in [[], [9] + bytes.dropFirst(), [1] + bytes.dropFirst(), [2] + bytes.dropFirst(), Array(bytes.dropLast()), bytes + [0],
                    [UInt8](repeating: 0xff, count: bytes.count), [3, 0x45] + bytes.dropFirst()] as [[UInt8]] {
            #expect(NoveltyDetector(state: bad) == nil)
        }
        // A count no detector reaches (`seen` at Int.max, found by `fuzz.sh detectorstate`) is held below
        // Int.max, so feeding does not overflow; and what it writes restores.
        var damaged = try #require(NoveltyDetector(state: [2] + withUnsafeBytes(of: Int64.max.littleEndian, Array.init) + fresh2[9...]))
        for i in 0..<3 { _ = damaged.score(Double(i), at: Int64(i) * 60) }
        #expect(NoveltyDetector(state: damaged.state) != nil)
        #expect(SeriesScan(state: Array(SeriesScan().state.dropLast(3))) == nil)
        // A scan's state keeps its alerts; one of layout 2 (8-byte fields) restores to the same scan, and one
        // of layout 1 (without the alerts) records from its next minute.
        var scan = SeriesScan()
        for (i, x) in xs.prefix(1700).enumerated() { _ = scan.feed(RollupPoint(t: Int64(i) * 60_000, min: x, max: x, sum: x, count: 1, last: x), counter: false) }
        let state = scan.state, state2 = scan.state(layout: 2)
        let back = try #require(SeriesScan(state: state))
        #expect(!scan.alerts.isEmpty && back.alerts == scan.alerts && back.recordedSince == scan.recordedSince && back.state == state)
        #expect(SeriesScan(state: state2)?.state == state && state.count < state2.count, "\(state.count) \(state2.count)")
        #expect(scan.recordedSince == 1699 * 60_000 - SeriesScan.recordSpan && scan.alerts.allSatisfy { $0.t >= scan.recordedSince })
        let layoutOne = [1] + Array(state2[1..<26]) + Array(state2[(42 + 24 * scan.alerts.count)...])
        let old = try #require(SeriesScan(state: layoutOne))
        #expect(old.alerts.isEmpty && old.recordedSince == 1699 * 60_000 + 1 && old.through == scan.through)
        for bad in [Array(state2.prefix(40)), Array(state2[..<34]) + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] + Array(state2[42...]),
                    Array(state.prefix(40)), Array(state.dropLast())] {
            #expect(SeriesScan(state: bad) == nil)
        }
    }

    /// More series than a pass reads at once (128): every series gets a state, a second pass resumes each
    /// from its own (feeding only the new minutes), and two passes save what one pass over both spans does.
    @Test(arguments: StoreEngine.available)
    func theMonitorResumesEachOfManySeries(_ engine: StoreEngine) throws {
        let e = try EngineStore(engine)
        let store = try e.open()
        defer { e.remove() }
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000, series = 300
        try writeTicks(store, t0: t0, interval: 30_000, ticks: 240) { i, t in
            var obs = Observation(timestamp: t)
            for k in 0..<series { obs.add("chunked_\(k)", .empty, Double((i * 7 + k * 13) % 50)) }
            return obs
        }

        var monitor = AnomalyMonitor(store: store)
        monitor.settle = 0
        let first = try monitor.advance(now: t0 + 3_600_000)
        #expect(first.seriesFed == series, "\(first)")
        let states = try store.detectorStates()
        #expect(states.count == series)

        var restarted = AnomalyMonitor(store: store)
        restarted.settle = 0
        let second = try restarted.advance(now: t0 + 2 * 3_600_000)
        #expect(second.seriesFed == series && second.minutesFed <= series * 61, "only the new minutes: \(second)")
        let resumed = try store.detectorStates()
        #expect(resumed.count == series && resumed.values.allSatisfy { $0.through > states[$0.series]!.through })
        // The same as one pass over the two hours.
        try store.pruneDetectorStates(before: .max)
        var once = AnomalyMonitor(store: store)
        once.settle = 0
        try once.advance(now: t0 + 2 * 3_600_000)
        #expect(try store.detectorStates() == resumed)
    }

    @Test func theMonitorSavesAndAScanStartsFromIt() throws {
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000
        var rng = SeededRandom(seed: 8)
        let shift = t0 + 5 * 3_600_000
        let (store, dir) = try storeOfTicks("hosttwin-monitor", t0: t0, interval: 10_000, ticks: (6 * 360)) { i, t in
            var obs = Observation(timestamp: t)
            obs.add("queue_depth", .empty, (t >= shift ? 80 : 10) + Double.random(in: -2...2, using: &rng))
            obs.counter("requests_total", .empty, Double(i) * 5 + Double(i % 7))
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // One monitor runs to 3 h; a "restarted" one (a new value, states from the store) goes on to 6 h.
        var monitor = AnomalyMonitor(store: store)
        monitor.settle = 0
        let first = try monitor.advance(now: t0 + 3 * 3_600_000)
        #expect(first.seriesFed == 2 && first.minutesFed >= 2 * 178, "\(first)")
        var restarted = AnomalyMonitor(store: store)
        restarted.settle = 0
        let second = try restarted.advance(now: t0 + 6 * 3_600_000)
        #expect(second.minutesFed <= 2 * 181, "the restart fed only the new minutes: \(second)")
        let resumed = try store.detectorStates()
        // The same as one monitor that ran the six hours in one go.
        try store.pruneDetectorStates(before: .max)
        #expect(try store.detectorStates().isEmpty)
        var once = AnomalyMonitor(store: store)
        once.settle = 0
        try once.advance(now: t0 + 6 * 3_600_000)
        #expect(try store.detectorStates() == resumed)
        // A scan of the last two hours from states saved before them finds what a scan that learns from
        // the whole history finds (states that end after the window's start are not used).
        let end = t0 + 6 * 3_600_000 - 10_000
        let learning = try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 4 * 3_600_000)
        try store.pruneDetectorStates(before: .max)
        var early = AnomalyMonitor(store: store)
        early.settle = 0
        try early.advance(now: t0 + 4 * 3_600_000 - 60_000)
        let fromState = try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 3_600_000)
        #expect(fromState.alerts.map(\.time) == learning.alerts.map(\.time), "\(fromState.alerts.map(\.time)) vs \(learning.alerts.map(\.time))")
        #expect(fromState.alerts.contains { $0.series == "queue_depth" })
    }

    /// A scan of a window that holds the end of a saved state (a rule's ten minutes, saved a few minutes
    /// ago) takes the window's alerts up to that end from the state's record and reads only the minutes
    /// after it: it finds what a scan that learns the whole history finds, with no history to learn from.
    @Test func aScanResumesFromAStateSavedInsideItsWindow() throws {
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000
        var rng = SeededRandom(seed: 9)
        let shift = t0 + 5 * 3_600_000
        let (store, dir) = try storeOfTicks("hosttwin-monitor-record", t0: t0, interval: 10_000, ticks: 6 * 360) { i, t in
            var obs = Observation(timestamp: t)
            obs.add("queue_depth", .empty, (t >= shift ? 80 : 10) + Double.random(in: -2...2, using: &rng))
            obs.counter("requests_total", .empty, Double(i) * 5 + Double(i % 7))
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let end = t0 + 6 * 3_600_000 - 10_000
        let learning = try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 4 * 3_600_000)
        #expect(learning.alerts.contains { $0.series == "queue_depth" && $0.time >= TwinTime.rfc3339(shift) })
        let pastLearning = try AnomalyScan.run(store: store, to: end - 30 * 60_000, window: 3_600_000, history: 4 * 3_600_000)
        #expect(pastLearning.alerts.contains { $0.series == "queue_depth" })
        // The monitor saved its states 25 minutes before the end, inside the window; with no history, only
        // the record can give the alerts before that.
        var monitor = AnomalyMonitor(store: store)
        monitor.settle = 0
        try monitor.advance(now: end - 25 * 60_000)
        let first = try #require(try store.detectorStates().values.first)
        let saved = try #require(SeriesScan(state: first.bytes))
        #expect(saved.recordedSince <= end - 2 * 3_600_000 && saved.through! > end - 2 * 3_600_000)
        let resumed = try AnomalyScan.run(store: store, to: end, window: 2 * 3_600_000, history: 0)
        #expect(resumed.alerts.map(\.time) == learning.alerts.map(\.time), "\(resumed.alerts.map(\.time)) vs \(learning.alerts.map(\.time))")
        #expect(resumed.alerts.map(\.score) == learning.alerts.map(\.score) && resumed.liveSeries == learning.liveSeries)
        // A window that ends before the state does learns again: as before there was a state.
        let past = try AnomalyScan.run(store: store, to: end - 30 * 60_000, window: 3_600_000, history: 4 * 3_600_000)
        #expect(past.alerts.map(\.time) == pastLearning.alerts.map(\.time) && past.alerts.map(\.score) == pastLearning.alerts.map(\.score))
        #expect(try AnomalyScan.run(store: store, to: end - 30 * 60_000, window: 3_600_000, history: 0).alerts.isEmpty, "nothing learned: no alert")
    }

    /// A series that ended (an exited process's) is retired an hour after the newest state: its detector
    /// gives way to a few bytes in ``RetiredDetectors``, and later passes and scans neither read its history nor learn it again (they
    /// did at every pass, only to drop it). When it comes back it learns from its return. A host that was
    /// off for hours keeps every state.
    /// The retired series' text form round-trips, and damaged text is refused (the series then learn again).
    @Test func retiredSeriesAsText() {
        let r = RetiredDetectors(through: 1_800_000_000_000, series: [3, 17, 18, 9_000_000_000])
        #expect(r.text == "1800000000000:3,14,1,8999999982")
        #expect(RetiredDetectors(text: r.text) == r)
        #expect(RetiredDetectors(text: "5:") == RetiredDetectors(through: 5, series: []))
        for bad in ["", "5", "x:1", "5:1,,2", "5:1,", "5:1,0", "5:1,-1", "5:a", "5:9223372036854775807,1"] { #expect(RetiredDetectors(text: bad) == nil, "\(bad)") }
        // The mark: the newest `through` and the set it speaks of, by fingerprint (the order of insertion aside).
        let mark = RetiredDetectors.Mark(through: -7, fingerprint: r.fingerprint)
        #expect(RetiredDetectors.Mark(text: mark.text) == mark)
        #expect(RetiredDetectors(through: 0, series: [18, 9_000_000_000, 3, 17]).fingerprint == r.fingerprint)
        #expect(RetiredDetectors(through: 0, series: [3, 17, 19, 9_000_000_000]).fingerprint != r.fingerprint)
        for bad in ["", "5", "5:", ":5", "5:-1", "5:1:2", "x:1"] { #expect(RetiredDetectors.Mark(text: bad) == nil, "\(bad)") }
    }

    /// A series the last pass found silent (an exited process's, not yet retired) is read from the minute
    /// that pass fed the others to, in their reads, and its saved state is read only when it has minutes
    /// again: passes and scans find exactly what they find reading each from its own last minute. An
    /// agent's series (a `host` label) goes on from its own minute: its backlog may come late.
    @Test(arguments: StoreEngine.available)
    func silentSeriesAreReadOnlyWhenTheyComeBack(_ engine: StoreEngine) throws {
        let e = try EngineStore(engine)
        let store = try e.open()
        defer { e.remove() }
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000, minute: Int64 = 60_000
        // Two series present ten minutes in fifty (at minutes 20–29, 70–79, …): silent for forty between,
        // never retired. The queue shifts at 340 min, after the detectors' warm-up.
        try writeTicks(store, t0: t0, interval: 30_000, ticks: 13 * 60) { i, t in
            var obs = Observation(timestamp: t)
            obs.add("queue_depth", .empty, Double(i % 13) + (t >= t0 + 340 * minute ? 60 : 0))
            obs.counter("requests_total", .empty, Double(i) * 5)
            if (20..<30).contains((t - t0) / minute % 50) {
                obs.add("short_lived_rss", .empty, Double(i % 17))
                obs.add("agent_rss", Labels(["host": "agent"]), Double(i % 11))
            }
            return obs
        }
        let silentOne = try #require(try store.seriesCatalog().first { $0.key.metric == "short_lived_rss" })
        let agents = try #require(try store.seriesCatalog().first { $0.key.metric == "agent_rss" })
        #expect(AnomalyScan.Resume.start(after: t0, of: silentOne, silentThrough: t0 + 9 * minute, limit: t0 + 9 * minute) == t0 + 10 * minute)
        #expect(AnomalyScan.Resume.start(after: t0, of: agents, silentThrough: t0 + 9 * minute, limit: .max) == t0 + minute, "an agent's: its own")
        #expect(AnomalyScan.Resume.start(after: t0, of: silentOne, silentThrough: t0 + 9 * minute, limit: t0 + 8 * minute) == t0 + minute, "a scan ending before the pass")

        let passes = stride(from: 40, through: 385, by: 5).map { t0 + Int64($0) * minute }
        func run(marked: Bool) throws -> (passes: [AnomalyMonitor.Pass], states: [[Int64: DetectorState]], scans: [AnomalyReport]) {
            try store.pruneDetectorStates(before: .max)
            var monitor = AnomalyMonitor(store: store)
            monitor.settle = 0
            var out: ([AnomalyMonitor.Pass], [[Int64: DetectorState]], [AnomalyReport]) = ([], [], [])
            func unmark() throws {
                guard !marked else { return }
                try store.database.write { db in
                    try TwinStore.deleteMeta(db, RetiredDetectors.metaKey)
                    try TwinStore.deleteMeta(db, RetiredDetectors.Mark.metaKey)
                }
            }
            for now in passes {
                try unmark()
                out.0.append(try monitor.advance(now: now))
                out.1.append(try store.detectorStates())
                try unmark()
                out.2.append(try AnomalyScan.run(store: store, to: now + 2 * minute, window: 10 * minute, history: 6 * 3_600_000, warnings: false))
            }
            return out
        }
        let marked = try run(marked: true)
        #expect(marked.passes.map(\.returned).reduce(0, +) == 14, "the two series back seven times: their states read then only")
        #expect(marked.passes.contains { $0.seriesFed == 2 } && marked.passes.contains { $0.seriesFed == 4 })
        let reading = try run(marked: false)
        #expect(reading.passes.allSatisfy { $0.returned == 0 })
        #expect(marked.passes.map(\.minutesFed) == reading.passes.map(\.minutesFed) && marked.passes.map(\.alerts) == reading.passes.map(\.alerts))
        let sameStates = marked.states == reading.states // (not printed whole when it fails: kilobytes of states)
        #expect(sameStates, "the states after each pass")
        #expect(marked.scans.contains { $0.alerts.contains { $0.series == "queue_depth" } })
        #expect(marked.scans.map { $0.alerts.map(\.time) } == reading.scans.map { $0.alerts.map(\.time) })
        #expect(marked.scans.map(\.liveSeries) == reading.scans.map(\.liveSeries))
    }

    @Test(arguments: StoreEngine.available)
    func endedSeriesAreRetiredAfterAnHour(_ engine: StoreEngine) throws {
        let e = try EngineStore(engine)
        let store = try e.open()
        defer { e.remove() }
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000
        let back = t0 + 3 * 3_600_000 + 1_800_000
        try writeTicks(store, t0: t0, interval: 10_000, ticks: 4 * 360) { i, t in
            var obs = Observation(timestamp: t)
            obs.add("queue_depth", .empty, Double(i % 13))
            obs.counter("requests_total", .empty, Double(i) * 5)
            if t < t0 + 1_800_000 || t >= back { obs.add("short_lived_rss", .empty, Double(i % 17)) }
            return obs
        }
        let catalog = try store.seriesCatalog()
        let names = Dictionary(uniqueKeysWithValues: catalog.map { ($0.id, $0.key.metric) })
        let short = try #require(catalog.first { $0.key.metric == "short_lived_rss" }).id
        func states() throws -> [String: DetectorState] {
            Dictionary(uniqueKeysWithValues: try store.detectorStates().values.map { (names[$0.series]!, $0) })
        }
        var monitor = AnomalyMonitor(store: store)
        monitor.settle = 0
        try monitor.advance(now: t0 + 75 * 60_000)
        let early = try states().count, earlyRetired = try store.retiredDetectors()
        let earlyMinute = try states()["queue_depth"]!.through
        #expect(early == 3 && earlyRetired == RetiredDetectors(through: earlyMinute, series: []),
                "45 min after it ended, the short series keeps its detector; the pass's minute is marked")
        try monitor.advance(now: t0 + 3 * 3_600_000)
        var now = try states()
        #expect(Set(now.keys) == ["queue_depth", "requests_total"])
        #expect(try store.retiredDetectors() == RetiredDetectors(through: now["queue_depth"]!.through, series: [short]), "retired, found silent through the pass")
        // The next pass feeds the two live series only, and moves the set's `through` in the mark alone.
        func meta(_ key: String) throws -> String? { try store.database.read { db in try TwinStore.meta(db, key) } }
        let setRow = try meta(RetiredDetectors.metaKey)
        let quiet = try monitor.advance(now: t0 + 3 * 3_600_000 + 20 * 60_000)
        #expect(quiet.seriesFed == 2 && quiet.minutesFed <= 2 * 20, "\(quiet)")
        now = try states()
        #expect(try meta(RetiredDetectors.metaKey) == setRow, "nothing newly retired: the set's row is not written again")
        #expect(try store.retiredDetectors() == RetiredDetectors(through: now["queue_depth"]!.through, series: [short]))
        // A ten-minute scan from the states (a minute's rule) finds what one learning the whole history finds.
        let to = t0 + 3 * 3_600_000 + 20 * 60_000 - 1
        let fromStates = try AnomalyScan.run(store: store, to: to, window: 600_000, history: 6 * 3_600_000)
        // Back at 3.5 h: fed from its return (30 minutes), not from its first life.
        let returned = try monitor.advance(now: t0 + 4 * 3_600_000)
        now = try states()
        #expect(returned.seriesFed == 3 && returned.minutesFed <= 2 * 40 + 30, "\(returned)")
        let stillRetired = try store.retiredDetectors()?.series ?? []
        #expect(now.count == 3 && stillRetired.isEmpty, "back: a detector again, retired no more")
        // Ten hours later, no new minute: nothing is fed and nothing is dropped.
        let pass = try monitor.advance(now: t0 + 14 * 3_600_000)
        let kept = try states().count
        #expect(pass.seriesFed == 0 && kept == 3)
        try store.pruneDetectorStates(before: .max)
        let learning = try AnomalyScan.run(store: store, to: to, window: 600_000, history: 6 * 3_600_000)
        #expect(fromStates.liveSeries == 2 && learning.liveSeries == 2)
        #expect(fromStates.alerts.map(\.time) == learning.alerts.map(\.time))
        // A set written by a binary without marks holds over a mark of another set; a damaged mark is ignored.
        let older = RetiredDetectors(through: t0, series: [short, 999])
        for mark in [RetiredDetectors.Mark(through: t0 + 9, fingerprint: 42).text, "damaged"] {
            try store.database.write { db in
                try TwinStore.setMeta(db, RetiredDetectors.metaKey, older.text)
                try TwinStore.setMeta(db, RetiredDetectors.Mark.metaKey, mark)
            }
            #expect(try store.retiredDetectors() == older, "\(mark)")
        }
    }
}

/// A filesystem filling within minutes is flagged on a twin 11 minutes old, from the trend alone.
@Suite struct ExhaustionTests {
    @Test func aFastFillIsFlaggedOnAYoungTwin() throws {
        let t0: Int64 = 1_800_000_000_000
        let size = 100e9
        let root = Labels(["device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/"])
        let data = Labels(["device": "/dev/vdb", "fstype": "ext4", "mountpoint": "/data"])
        // The root filesystem bind-mounted again (as /run/netns is here): one filesystem, one warning.
        let bind = Labels(["device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/run/netns"])
        var rng = SeededRandom(seed: 5)
        let fillStart = t0 + 9 * 60_000
        let (store, dir) = try storeOfTicks("hosttwin-exhaustion", t0: t0, interval: 1_000, ticks: (11 * 60)) { i, t in
            var obs = Observation(timestamp: t)
            // "/" at 31 % free, then a runaway copy fills it in two minutes; "/data" only jitters.
            let copied = t < fillStart ? 0 : min(1, Double(t - fillStart) / 120_000) * 31e9
            for mount in [root, bind] {
                obs.add("node_filesystem_avail_bytes", mount, 31e9 - copied)
                obs.add("node_filesystem_size_bytes", mount, size)
            }
            obs.add("node_filesystem_avail_bytes", data, 50e9 + Double.random(in: -2e8...2e8, using: &rng))
            obs.add("node_filesystem_size_bytes", data, size)
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try store.seriesCatalog()
        // Before the fill: nothing.
        #expect(try AnomalyScan.exhaustion(store: store, catalog: catalog, to: fillStart - 1_000).isEmpty)
        // 22 seconds into it (the short window's 20 s span): filling fast.
        let mid = try AnomalyScan.exhaustion(store: store, catalog: catalog, to: fillStart + 22_000)
        #expect(mid.count == 1 && mid.first?.kind == "filesystem filling fast" && mid.first?.subject == "/", "\(mid)")
        // A minute in, with the forecasts too: one warning for the root filesystem, at "/".
        let minute = try AnomalyScan.warnings(store: store, catalog: catalog, from: fillStart + 60_000 - 3_600_000, to: fillStart + 60_000)
        #expect(minute.map(\.subject) == ["/"], "\(minute)")
        // Once full: full.
        let end = try AnomalyScan.run(store: store, to: t0 + 11 * 60_000 - 1_000, window: 3_600_000, history: 0)
        #expect(end.warnings.contains { $0.kind == "filesystem full" && $0.subject == "/" }, "\(end.warnings)")
        #expect(!end.warnings.contains { $0.subject == "/data" || $0.subject == "/run/netns" }, "\(end.warnings)")
    }

    /// "Filesystem filling" by forecast: 40 minutes of a build's writes, at a pace that would fill the disk
    /// in 17 hours, say little about tomorrow (beyond ten times the 40 minutes); at a pace that fills it
    /// in 3 hours they do — once for the filesystem, though it is mounted twice.
    @Test(arguments: [(100e6, false), (500e6, true)])
    func aShortTrendIsNotProjectedFar(bytesPerMinute: Double, warned: Bool) throws {
        let t0: Int64 = 1_800_000_000_000
        let root = Labels(["device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/"])
        let (store, dir) = try storeOfTicks("hosttwin-fsforecast", t0: t0, interval: 10_000, ticks: 240) { i, t in
            var obs = Observation(timestamp: t)
            for mount in [root, Labels(["device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/run/netns"])] {
                obs.add("node_filesystem_avail_bytes", mount, 100e9 - Double(i) / 6 * bytesPerMinute)
                obs.add("node_filesystem_size_bytes", mount, 250e9)
            }
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = t0 + 239 * 10_000
        let w = try AnomalyScan.warnings(store: store, catalog: try store.seriesCatalog(), from: now - 3_600_000, to: now)
        #expect(w.filter { $0.kind == "filesystem filling" }.map(\.subject) == (warned ? ["/"] : []), "\(w)")
    }

    @Test func theTrendMustBeClear() {
        let now: Int64 = 1_000_000
        // Steady fall of 1 GB/s from 50 GB: out in 50 s from the last sample.
        let falling = (0..<60).map { (now - 59_000 + Int64($0) * 1_000, 109e9 - Double($0) * 1e9) }
        let f = ExhaustionTrend.assess(falling, capacity: 200e9, now: now, horizon: 3_600_000)
        #expect(f.map { abs(Double($0.exhaustedAt - now) - 50_000) < 1_000 } == true, "\(String(describing: f))")
        // Noise without a trend, too few samples, a fall too small, a fill beyond the horizon: nothing.
        let noisy = (0..<60).map { (now - 59_000 + Int64($0) * 1_000, 50e9 + ($0 % 2 == 0 ? 5e9 : -5e9)) }
        #expect(ExhaustionTrend.assess(noisy, capacity: 200e9, now: now, horizon: 3_600_000) == nil)
        #expect(ExhaustionTrend.assess(Array(falling.suffix(3)), capacity: 200e9, now: now, horizon: 3_600_000) == nil)
        let slight = (0..<60).map { (now - 59_000 + Int64($0) * 1_000, 50e9 - Double($0) * 1e6) }
        #expect(ExhaustionTrend.assess(slight, capacity: 200e9, now: now, horizon: 3_600_000) == nil)
        #expect(ExhaustionTrend.assess(falling, capacity: 200e9, now: now, horizon: 10_000) == nil)
        // Memory falling at 12.6 MB/s from 24.5 GB (a build's allocations, seen on this machine): 30 s of it
        // do not say it runs out in 32 minutes (beyond ten times the 30 s); five minutes of it do.
        func memory(_ seconds: Int) -> [(Int64, Double)] {
            (0..<seconds).map { i -> (Int64, Double) in (now - Int64(seconds - 1 - i) * 1_000, 24.5e9 - Double(i) * 12.6e6) }
        }
        #expect(ExhaustionTrend.assess(memory(30), capacity: 25e9, now: now, horizon: 6 * 3_600_000) == nil)
        #expect(ExhaustionTrend.assess(memory(300), capacity: 25e9, now: now, horizon: 6 * 3_600_000) != nil)
        // Already out: flagged whatever the trend.
        #expect(ExhaustionTrend.assess([(now, 1e6)], capacity: 200e9, now: now, horizon: 0)?.exhausted == true)
        #expect(ExhaustionTrend.assess([], capacity: 200e9, now: now, horizon: 0) == nil)
    }
}

/// A store in a fresh temporary directory holding `ticks` observations `interval` ms apart from `t0`,
/// each made by `observe` from the tick's index and time.
func storeOfTicks(_ name: String, t0: Int64, interval: Int64, ticks: Int, _ observe: (Int, Int64) throws -> Observation) throws -> (TwinStore, String) {
    let dir = try temporaryDirectory(name)
    let store = try TwinStore.open(dataDir: dir)
    try writeTicks(store, t0: t0, interval: interval, ticks: ticks, observe)
    return (store, dir)
}

/// Writes `ticks` observations `interval` apart from `t0` into `store` and finishes the writer.
func writeTicks(_ store: TwinStore, t0: Int64, interval: Int64, ticks: Int, _ observe: (Int, Int64) throws -> Observation) throws {
    let writer = TwinWriter(store: store)
    try writer.begin(now: t0 - 1, interval: interval)
    for i in 0..<ticks { _ = try writer.commit(try observe(i, t0 + Int64(i) * interval)) }
    try writer.finish(now: t0 + Int64(ticks) * interval)
}

/// Maintenance window and advice on a host whose CPU is busy in the daytime only.
@Suite struct AdviceTests {
    /// A daily cycle's quiet hours are quiet every day; in noise around a level the quietest hour of
    /// the forecast is quiet on about a tenth of the days, and the window says it is not to be trusted.
    @Test func aWindowIsTrustedOnlyWhereItsHourWasQuietDayAfterDay() {
        let period = 24, days = 8
        let cycle = (0..<(period * days)).map { i in (8..<18).contains(i % period) ? 10.0 : 1.0 }
        let night = Advisor.quietRegularity(cycle, period: period, width: 2, start: cycle.count + 2)
        #expect(night.days == 7 && night.quiet == 7, "\(night)")
        let noon = Advisor.quietRegularity(cycle, period: period, width: 2, start: cycle.count + 12)
        #expect(noon.quiet == 0, "\(noon)")
        var rng = SeededRandom(seed: 7)
        let noise = (0..<(period * days)).map { _ in Double.random(in: 0..<1, using: &rng) }
        let quietOnes = (0..<period).map { Advisor.quietRegularity(noise, period: period, width: 1, start: noise.count + $0).quiet }
        #expect(quietOnes.allSatisfy { $0 < 5 } && quietOnes.reduce(0, +) < period * 7 / 5, "\(quietOnes)")
        #expect(Advisor.quietRegularity([1, 2, 3], period: 24, width: 1, start: 3) == (0, 0))
        // Degenerate shapes answer rather than trap: a single slot, a one-step period, one day.
        #expect(Advisor.quietRegularity([1, 2, 3], period: 1, width: 3, start: 3) == (1, 1))
        #expect(Advisor.quietRegularity([1, 2, 3], period: 1, width: 1, start: 3, days: 1) == (1, 1))
        #expect(Advisor.quietRegularity([], period: 0, width: 1, start: 0) == (0, 0))
    }

    @Test func quietSlotIsAtNightAndLowUseIsReported() throws {
        let day: Int64 = 86_400_000
        let t0: Int64 = 1_800_000_000_000 / day * day // midnight UTC
        var lines: [String] = []
        var busy = 0.0, idle = 0.0, rx = 0.0, tx = 0.0
        for i in 0...(3 * 288) {
            let t = t0 + Int64(i) * 300_000
            let hour = (t % day) / 3_600_000
            let load = (9..<17).contains(hour) ? 0.3 : 0.02 // share of a core busy
            busy += load * 300; idle += (1 - load) * 300
            rx += 1000 * 300; tx += 500 * 300
            lines.append("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} \(busy) \(t)")
            lines.append("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} \(idle) \(t)")
            lines.append("node_network_receive_bytes_total{device=\"eth0\"} \(rx) \(t)")
            lines.append("node_network_transmit_bytes_total{device=\"eth0\"} \(tx) \(t)")
            lines.append("node_memory_MemAvailable_bytes 15000000000 \(t)")
            lines.append("node_memory_MemTotal_bytes 16000000000 \(t)")
        }
        let (store, dir) = try storeWith(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = t0 + 3 * day
        let w = try #require(try Advisor.maintenanceWindow(store: store, now: now, duration: 2 * 3_600_000, within: day, history: 7 * day))
        // The nights were quiet every day, but a week is not stored: medium.
        #expect(w.confidence == "medium" && w.basis.contains("3 d stored") && w.days >= 2 && w.quietDays == w.days, "\(w.basis) \(w.quietDays)/\(w.days)")
        let start = try #require(TwinTime.parseRFC3339(w.start))
        let hour = (start % day) / 3_600_000
        #expect(!(8..<17).contains(hour), "the quiet slot starts at \(w.start), inside the busy hours")
        let advice = try Advisor.advise(store: store, now: now, history: 3 * day)
        #expect(advice.contains { $0.topic == "memory" && $0.recommendation.hasPrefix("over-provisioned") }, "\(advice)")
        // The CPU is 30 % busy in the daytime: its 95th percentile is neither below 20 % nor above 85 %.
        #expect(!advice.contains { $0.topic == "cpu" }, "\(advice)")
        // Asked for a week of a store that holds three days: the evidence says three, the confidence is medium.
        let week = try Advisor.advise(store: store, now: now, history: 7 * day)
        let memory = try #require(week.first { $0.topic == "memory" })
        #expect(memory.evidence.contains("over the 3 d stored (of 7 d asked)") && memory.confidence == "medium", "\(memory)")
        // Half an hour of history: no sizing advice, no maintenance window; both say why.
        let young = try Advisor.advise(store: store, now: t0 + 35 * 60_000, history: 35 * 60_000)
        #expect(young.map(\.topic) == ["history"] && young[0].evidence == "35 min stored", "\(young)")
        #expect(throws: InsufficientHistory.self) {
            try Advisor.maintenanceWindow(store: store, now: t0 + 35 * 60_000, duration: 3_600_000, within: day, history: 7 * day)
        }
    }
}

/// `hosttwin bench forecast --data-dir`: the host's own series, rolling origins one season apart.
@Suite struct HostForecastBenchTests {
    @Test func evaluatesTheStoredHostSeries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hosttwin-fcbench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Three days at 5 minutes: a daily load cycle and memory slowly running down.
        let start: Int64 = 1_790_000_000
        var text = "# TYPE node_load1 gauge\n# TYPE node_memory_MemAvailable_bytes gauge\n"
        for i in 0..<(3 * 288) {
            let t = start + Int64(i) * 300, phase = 2 * Double.pi * Double(i % 288) / 288
            text += "node_load1 \(1.5 + sin(phase) + 0.1 * Double(i % 7)) \(t)\n"
            text += "node_memory_MemAvailable_bytes \(8e9 - Double(i) * 1e6 + 1e8 * cos(phase)) \(t)\n"
        }
        try text.write(toFile: dir + "/data.prom", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["import", "--data-dir", dir + "/store", dir + "/data.prom", "--quiet"]).status == 0)
        let r = try EndToEndTests.cli(["bench", "forecast", "--data-dir", dir + "/store", "--origins", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let series = try #require(out["series"] as? [[String: Any]])
        #expect(Set(series.compactMap { $0["series"] as? String }) == ["load1", "memory available"], "only stored series are evaluated")
        for s in series {
            let mase = try #require(s["mase"] as? Double), naive = try #require(s["naiveMase"] as? Double)
            #expect(mase.isFinite && mase <= naive * 1.05, "no worse than seasonal naive: \(s)")
        }
        // Too short for two seasons: a clear refusal.
        let short = try EndToEndTests.cli(["bench", "forecast", "--data-dir", dir + "/store", "--season", "7d"])
        #expect(short.status != 0 && short.stderr.contains("less than two seasons"))
    }
}
