import Synchronization
import TwinCore
import TwinQuery

/// The series rules write — recording rules' results and `ALERTS`/`ALERTS_FOR_STATE` — kept in memory for a
/// window and read by later rules and queries through ``LayeredSource``. A series that a rule stops
/// producing gets a stale marker, so it vanishes at once instead of lingering for the lookback, as in
/// Prometheus.
public final class RecordedSeries: SampleSource {
    struct Series {
        var labels: Labels
        var t: [Int64] = []
        var v: [Double] = []
        var staleAt: [Int64] = []
    }
    struct Held {
        /// Series by metric name, then label set: a selector names its metric, and after a churn of
        /// short-lived alerts `ALERTS` alone holds thousands of series that other selectors need not scan.
        var byName: [String: [Labels: Series]] = [:]
        /// The label sets each writer (a rule) produced at its last write, for stale markers.
        var lastWrite: [String: Set<Labels>] = [:]
        var count: Int { byName.values.reduce(0) { $0 + $1.count } }
    }
    let held = Mutex(Held())
    /// Samples older than this (ms before the newest write) are dropped; 0 keeps everything.
    public let keep: Int64

    public init(keep: Int64) { self.keep = keep }

    /// Records `samples` (labels including `__name__`) at `t` for `writer`; series the writer produced
    /// last time but not now get a stale marker at `t`.
    public func write(_ writer: String, at t: Int64, _ samples: [(labels: Labels, value: Double)]) {
        held.withLock { h in
            var now = Set<Labels>()
            for (l, v) in samples {
                now.insert(l)
                h.byName[l[Labels.metricName] ?? "", default: [:]][l, default: Series(labels: l)].append(t, v)
            }
            for gone in h.lastWrite[writer, default: []] where !now.contains(gone) {
                h.byName[gone[Labels.metricName] ?? ""]?[gone]?.staleAt.append(t)
            }
            h.lastWrite[writer] = now
            if keep > 0, t % 60_000 < 1000 || h.count > 100_000 { h.trim(before: t - keep) }
        }
    }

    /// Forgets a writer's series' staleness bookkeeping (a rule removed by a reload): its series go stale at `t`.
    public func retire(_ writer: String, at t: Int64) {
        write(writer, at: t, [])
        held.withLock { _ = $0.lastWrite.removeValue(forKey: writer) }
    }

    public func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        try held.withLock { h in
            var out: [SeriesData] = []
            var count = 0
            let groups = matchers.first { $0.name == Labels.metricName && $0.op == .equal }.map { [h.byName[$0.value] ?? [:]] }
                ?? Array(h.byName.values)
            for group in groups {
                for s in group.values where matchers.allSatisfy({ $0.matches(s.labels[$0.name] ?? "") }) {
                    let a = s.t.partitioningIndex { $0 >= from }, b = s.t.partitioningIndex { $0 > to }
                    let stale = s.staleAt.filter { $0 >= from && $0 <= to }
                    guard a < b || !stale.isEmpty else { continue }
                    count += b - a
                    if count > limit { throw PromQLError.execution("query processing would load too many samples into memory in query execution") }
                    out.append(SeriesData(labels: s.labels, t: Array(s.t[a..<b]), v: Array(s.v[a..<b]), staleAt: stale))
                }
            }
            return out
        }
    }
}

extension RecordedSeries.Series {
    mutating func append(_ time: Int64, _ value: Double) {
        if let last = t.last, time <= last {
            // Evaluated again at the same time (a reload): the newer value replaces the older.
            if time == last { v[v.count - 1] = value }
            return
        }
        t.append(time)
        v.append(value)
    }
}

extension RecordedSeries.Held {
    mutating func trim(before cutoff: Int64) {
        for name in Array(byName.keys) {
            byName[name]?.trim(before: cutoff)
            if byName[name]?.isEmpty == true { byName[name] = nil }
        }
    }
}

extension Dictionary where Key == Labels, Value == RecordedSeries.Series {
    mutating func trim(before cutoff: Int64) {
        for (k, s) in self {
            let a = s.t.partitioningIndex { $0 >= cutoff }
            let staleKept = s.staleAt.filter { $0 >= cutoff }
            if a == s.t.count && staleKept.isEmpty { self[k] = nil; continue }
            if a > 0 || staleKept.count != s.staleAt.count {
                self[k]?.t.removeFirst(a)
                self[k]?.v.removeFirst(a)
                self[k]?.staleAt = staleKept
            }
        }
    }
}

/// The store's series and the rules' recorded series, read as one source.
public struct LayeredSource: SampleSource {
    public let base: any SampleSource
    public let recorded: RecordedSeries
    public init(base: any SampleSource, recorded: RecordedSeries) {
        self.base = base
        self.recorded = recorded
    }

    public func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        let stored = try base.select(matchers, from: from, to: to, limit: limit, deadline: deadline)
        let held = stored.reduce(0) { $0 + $1.t.count }
        return stored + (try recorded.select(matchers, from: from, to: to, limit: limit - held, deadline: deadline))
    }
}

extension Array {
    /// The first index whose element satisfies `p`, for `p` false then true along the array.
    func partitioningIndex(where p: (Element) -> Bool) -> Int {
        var lo = 0, hi = count
        while lo < hi {
            let m = (lo + hi) / 2
            if p(self[m]) { hi = m } else { lo = m + 1 }
        }
        return lo
    }
}
