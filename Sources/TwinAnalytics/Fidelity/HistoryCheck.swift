import Foundation
import TwinCore
import TwinQuery
import TwinStorage

/// Historical reconstruction, checked: a ``SyntheticHistory`` written into a store one tick at a time as
/// `run` writes, then the store's answers compared with the history's own truth — `state(at:)` at random
/// instants, stored samples per tier, and PromQL per tier (`hosttwin bench history`, docs/FIDELITY.md).
///
/// "Exact" per tier: raw samples are the generated values bit for bit; the 1-minute and 1-hour tiers'
/// points have the bucket's count, minimum, maximum and last value bit for bit and its sum within a
/// relative 1e-12 (summation order); PromQL over raw samples, and over the one-sample-per-minute view
/// of the 1-minute tier (the minute's mean for gauges, its last value for counters, at the minute's
/// start), equals the same function evaluated on those samples by this file's own reference — bit for
/// bit for selections, within 1e-9 relative for `rate` (floating-point evaluation order).
public enum HistoryCheck {
    /// Writes `history` into `store` through a ``TwinWriter``: every tick with every series, and the
    /// entities of each kind that changed at that tick. `progress` gets the share done now and then.
    public static func write(_ history: SyntheticHistory, into store: TwinStore, policy: StoragePolicy = StoragePolicy(),
                             progress: (Double) -> Void = { _ in }) throws {
        let writer = TwinWriter(store: store, policy: policy)
        try writer.begin(now: history.start, interval: history.interval)
        var replay = history.replay()
        var types: [String: MetricType] = [:]
        for s in history.series { types[s.key.metric] = s.type }
        let span = Double(history.end - history.start)
        var reported = history.start
        for t in history.ticks(from: history.start, to: history.end) {
            var obs = Observation(timestamp: t)
            obs.types = types
            obs.samples.reserveCapacity(history.series.count)
            for (i, s) in history.series.enumerated() { obs.samples.append(MetricSample(s.key, history.value(i, at: t))) }
            let changed = replay.step(to: t)
            // The first tick says every kind (also the empty ones); later ticks the kinds that changed.
            for kind in t == history.start ? Set(EntityKind.allCases) : changed where kind != .host { obs.set(kind, Array(replay.present[kind, default: [:]].values)) }
            try writer.commit(obs)
            if t - reported >= 3_600_000 { reported = t; progress(Double(t - history.start) / span) }
        }
        try writer.finish(now: history.end)
    }

    /// Agreement of one kind of check: how many things were compared and how many were exact, with the
    /// first few differences described.
    public struct Agreement: Sendable, Codable {
        public var compared = 0
        public var exact = 0
        public var examples: [String] = []
        public var share: Double { compared == 0 ? 1 : Double(exact) / Double(compared) }

        mutating func record(_ ok: Bool, _ what: @autoclosure () -> String) {
            compared += 1
            if ok { exact += 1 } else if examples.count < 5 { examples.append(what()) }
        }
        enum CodingKeys: String, CodingKey { case compared, exact, examples }
    }

    /// What the checks found.
    public struct Report: Sendable, Codable {
        /// `state(at:)` by kind: entities of the truth and the store together, exact when present in both
        /// with equal attributes.
        public var state: [String: Agreement] = [:]
        /// Stored samples by tier (`raw`, `1m`, `1h`): samples or rollup points compared.
        public var samples: [String: Agreement] = [:]
        /// PromQL by tier (`raw`, `1m`): query results compared.
        public var promql: [String: Agreement] = [:]
        /// `state(at:)` times (ms) at instants of the last 7 days.
        public var stateAtMillis: [Double] = []
        public var instants = 0
    }

    /// Compares the store with the history at `instants` random moments (and as many sample windows
    /// and PromQL evaluations per tier), chosen with `seed`. `rawFrom` is the oldest raw sample's time.
    public static func check(_ history: SyntheticHistory, store: TwinStore, instants: Int, seed: UInt64 = 7) throws -> Report {
        var rng = SeededRandom(seed: seed)
        var report = Report()
        report.instants = instants
        let lastTick = history.tick(atOrBefore: history.end - 1)!
        let week = max(history.start, lastTick - 7 * StoragePolicy.day)

        // State as of random instants (any millisecond), timed within the last week.
        for n in 0..<instants {
            let t = n % 2 == 0 ? Int64.random(in: history.start...lastTick + history.interval - 1, using: &rng)
                               : Int64.random(in: week...lastTick + history.interval - 1, using: &rng)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let stored = try store.state(at: t)
            if t >= week { report.stateAtMillis.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
            var byKind: [EntityKind: [String: [String: AttributeValue]]] = [:]
            for v in stored where v.kind != .host { byKind[v.kind, default: [:]][v.key] = v.attributes }
            let truth = history.truth(at: t)
            for kind in Set(truth.keys).union(byKind.keys) {
                let a = truth[kind] ?? [:], b = byKind[kind] ?? [:]
                for key in Set(a.keys).union(b.keys) {
                    let what = { () -> String in
                        let at = TwinTime.rfc3339(t)
                        if a[key] == nil { return "\(kind.rawValue) \(key) at \(at): in the store, not in the history" }
                        if b[key] == nil { return "\(kind.rawValue) \(key) at \(at): in the history, not in the store" }
                        return "\(kind.rawValue) \(key) at \(at): \(b[key]!) stored, \(a[key]!) true"
                    }
                    report.state[kind.rawValue, default: Agreement()].record(a[key] != nil && a[key] == b[key], what())
                }
            }
        }

        // Samples, tier by tier.
        guard let (rawFrom, _) = try store.sampleTimeRange() else { throw TwinError.badInput("the store holds no samples") }
        let ids = try history.series.map { s -> Int64 in
            guard let id = try store.seriesID(s.key) else { throw TwinError.badInput("series \(s.key) is not in the store") }
            return id
        }
        let minute = StoragePolicy.minute, hour = StoragePolicy.hour
        for _ in 0..<instants {
            let i = Int.random(in: 0..<history.series.count, using: &rng)
            // Raw: ten minutes inside the raw retention.
            let from = Int64.random(in: max(rawFrom, history.start)...max(rawFrom, lastTick - 600_000), using: &rng)
            let stored = try store.samples(history.series[i].key, from: from, to: from + 600_000) ?? []
            let expected = history.ticks(from: from, to: from + 600_000).map { ($0, history.value(i, at: $0)) }
            report.samples["raw", default: Agreement()].record(stored.count == expected.count && zip(stored, expected).allSatisfy { $0.0 == $1.0 && $0.1.bitPattern == $1.1.bitPattern },
                                                               "\(history.series[i].key) from \(TwinTime.rfc3339(from)): \(stored.count) samples stored, \(expected.count) generated, first difference \(firstDifference(stored, expected))")
            // 1-minute and 1-hour tiers: an hour of minutes before the raw horizon (when the store has
            // thinned any), a day of hours anywhere.
            if rawFrom - hour > history.start {
                let m = history.start / minute * minute + Int64.random(in: 0...(rawFrom - hour - history.start) / minute, using: &rng) * minute
                try compareRollups(history, i, id: ids[i], store: store, from: m, to: m + hour - 1, step: minute, tier: "1m", into: &report)
            }
            let d = history.start / hour * hour + Int64.random(in: 0...max(0, (lastTick - StoragePolicy.day - history.start) / hour), using: &rng) * hour
            try compareRollups(history, i, id: ids[i], store: store, from: d, to: min(d + StoragePolicy.day - 1, lastTick / hour * hour - 1), step: hour, tier: "1h", into: &report)
        }

        // PromQL, over raw samples and over the minute tier (avoiding 10 minutes around the seam).
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        for n in 0..<instants {
            let i = Int.random(in: 0..<history.series.count, using: &rng)
            let s = history.series[i]
            let inMinutes = n % 2 == 1 && rawFrom - 20 * minute > history.start + 10 * minute
            let t = inMinutes ? Int64.random(in: history.start + 10 * minute...rawFrom - 20 * minute, using: &rng)
                              : Int64.random(in: max(rawFrom, history.start) + 10 * minute...lastTick, using: &rng)
            let samples = inMinutes ? minuteSamples(history, i, from: t - 10 * minute, to: t) : history.ticks(from: t - 10 * minute, to: t).map { ($0, history.value(i, at: $0)) }
            var queries: [(String, Double?, Bool)] = [
                ("\(s.key)", lastIn(samples, t - 5 * minute, t), false),
                ("max_over_time(\(s.key)[5m])", samples.filter { $0.0 >= t - 5 * minute && $0.0 <= t }.map(\.1).max(), false),
            ]
            if s.type == .counter { queries.append(("rate(\(s.key)[5m])", rate(samples.filter { $0.0 >= t - 5 * minute && $0.0 <= t }, from: t - 5 * minute, to: t), true)) }
            for (q, want, approximate) in queries {
                let got: Double?
                if case .vector(_, let v) = try engine.instant(try PromQLParser.parse(q), at: t) { got = v.first?.value } else { got = nil }
                let ok: Bool
                switch (got, want) {
                case (nil, nil): ok = true
                case let (g?, w?): ok = approximate ? abs(g - w) <= 1e-9 * max(abs(w), 1) : g.bitPattern == w.bitPattern
                default: ok = false
                }
                report.promql[inMinutes ? "1m" : "raw", default: Agreement()].record(ok, "\(q) at \(TwinTime.rfc3339(t)): \(got.map { "\($0)" } ?? "nothing") from the store, \(want.map { "\($0)" } ?? "nothing") expected")
            }
        }
        return report
    }

    /// Compares the store's rollup points of series `i` over `[from, to]` at `step` with the buckets of
    /// the generated values.
    static func compareRollups(_ history: SyntheticHistory, _ i: Int, id: Int64, store: TwinStore, from: Int64, to: Int64, step: Int64,
                               tier: String, into report: inout Report) throws {
        guard to > from else { return }
        let (points, tiers) = try store.aggregate(id: id, from: from, to: to, step: step)
        var expected: [Int64: (min: Double, max: Double, sum: Double, count: Double, last: Double)] = [:]
        for t in history.ticks(from: from, to: to) {
            let v = history.value(i, at: t), b = t / step * step
            if let e = expected[b] { expected[b] = (Swift.min(e.min, v), Swift.max(e.max, v), e.sum + v, e.count + 1, v) } else { expected[b] = (v, v, v, 1, v) }
        }
        let series = history.series[i].key
        report.samples[tier, default: Agreement()].record(points.count == expected.count, "\(series) from \(TwinTime.rfc3339(from)) (\(tiers)): \(points.count) points stored, \(expected.count) expected")
        for p in points {
            guard let e = expected[p.t] else { continue }
            let ok = p.min == e.min && p.max == e.max && p.count == e.count && p.last == e.last && abs(p.sum - e.sum) <= 1e-12 * max(abs(e.sum), 1)
            report.samples[tier, default: Agreement()].record(ok, "\(series) at \(TwinTime.rfc3339(p.t)) (\(tiers)): min \(p.min) max \(p.max) sum \(p.sum) count \(p.count) last \(p.last) stored, \(e) expected")
        }
    }

    /// The one-sample-per-minute view PromQL reads from the 1-minute tier: at each minute's start, the
    /// minute's mean for gauges and its last value for counters.
    static func minuteSamples(_ history: SyntheticHistory, _ i: Int, from: Int64, to: Int64) -> [(Int64, Double)] {
        let minute = StoragePolicy.minute
        var out: [(Int64, Double)] = []
        var m = from / minute * minute
        while m <= to {
            let values = history.ticks(from: m, to: m + minute - 1).map { history.value(i, at: $0) }
            if let last = values.last {
                out.append((m, history.series[i].type == .counter ? last : values.reduce(0, +) / Double(values.count)))
            }
            m += minute
        }
        return out
    }

    /// The newest sample in `[from, to]`.
    static func lastIn(_ samples: [(Int64, Double)], _ from: Int64, _ to: Int64) -> Double? {
        samples.last { $0.0 >= from && $0.0 <= to }?.1
    }

    /// Prometheus' `rate` of a counter without resets over the window `[from, to]` holding `samples`:
    /// the increase extrapolated to the window's edges when the samples come within 1.1 average
    /// intervals of them (else by half an interval), and towards zero no further than the counter's
    /// value allows — written here from Prometheus' documentation, apart from the engine's.
    static func rate(_ samples: [(Int64, Double)], from: Int64, to: Int64) -> Double? {
        guard samples.count >= 2, let first = samples.first, let last = samples.last else { return nil }
        let increase = last.1 - first.1
        let sampled = Double(last.0 - first.0) / 1000
        let average = sampled / Double(samples.count - 1)
        var toStart = Double(first.0 - from) / 1000
        let toEnd = Double(to - last.0) / 1000
        if increase > 0, first.1 >= 0 { toStart = min(toStart, sampled * first.1 / increase) }
        let covered = sampled + (toStart < average * 1.1 ? toStart : average / 2) + (toEnd < average * 1.1 ? toEnd : average / 2)
        return increase * covered / sampled / (Double(to - from) / 1000)
    }

    static func firstDifference(_ a: [(Int64, Double)], _ b: [(Int64, Double)]) -> String {
        for (x, y) in zip(a, b) where x.0 != y.0 || x.1.bitPattern != y.1.bitPattern {
            return "\(TwinTime.rfc3339(x.0)) \(x.1) stored, \(TwinTime.rfc3339(y.0)) \(y.1) generated"
        }
        return a.count == b.count ? "none" : "a missing tail"
    }
}
