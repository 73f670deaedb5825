import Foundation
import Synchronization
import TwinCore
import TwinStorage

/// A ``SampleSource`` over a ``TwinStore``: series matched in memory against the store's series
/// catalog (indexed by metric name), samples read from chunks and the unsealed log. Where a range
/// reaches back before the oldest raw sample (raw samples are kept for days, 1-minute rollups for
/// months), the 1-minute rollups stand in: one sample per minute, the minute's mean for gauges and its
/// last value for counters (so `rate` and `increase` stay right), which is what long-range dashboards
/// need; PromQL over that part sees minute-spaced samples.
public final class StoreSampleSource: SampleSource {
    public let store: TwinStore
    /// The `job` and `instance` labels a Prometheus scrape would have added, given to series without
    /// them (nil: labels as stored).
    public let scrapeLabels: ScrapeLabels?
    static let tooMany = "query processing would load too many samples into memory in query execution; narrow the selector or the range"

    private struct Index {
        /// The store's series catalog as last read (shared with the store's copy): matching reads the labels
        /// a scrape would add without building them, and builds full label sets only for the series it returns.
        var series: [SeriesInfo] = []
        var byName: [String: [Int]] = [:]
        /// ``scrapeLabels`` with the instance decided (once, at the first series).
        var scrape: ScrapeLabels?
        /// ``RecentSamples/seriesGeneration`` when the catalog was last read.
        var generation: Int?
    }
    private let index = Mutex(Index())
    /// The oldest raw sample's time, the oldest rollup point's, and when they were read (ms); re-read at
    /// most once a minute.
    private let horizons = Mutex<(raw: Int64, rollups: Int64, readAt: Int64)?>(nil)

    /// The recent samples of the series read, fed by the collection loop (a running twin's rules), answering
    /// the reads it holds whole.
    public let recent: RecentSamples?

    public init(store: TwinStore, scrapeLabels: ScrapeLabels? = nil, recent: RecentSamples? = nil) {
        self.store = store
        self.scrapeLabels = scrapeLabels
        self.recent = recent
    }

    /// Every series (id, labels with `__name__`, type) matching all `matchers`. The index lock is held
    /// only to bring the index up to date and take a snapshot; matching runs outside it (a slow regular
    /// expression delays no other query) and stops with a timeout once the clock passes `deadline`.
    public func matching(_ matchers: [Matcher], deadline: Int64 = .max) throws -> [(id: Int64, labels: Labels, type: MetricType)] {
        // Fed by the ticks, the source knows when the store has new series: until then the catalog (a read
        // transaction) is not read again.
        let generation = recent?.seriesGeneration
        let unchanged = generation.flatMap { g in index.withLock { $0.generation == g ? $0 : nil } }
        let catalog = unchanged == nil ? try store.seriesCatalog() : []
        let ix = unchanged ?? index.withLock { ix in
            ix.generation = generation
            if ix.series.count < catalog.count {
                if ix.scrape == nil { ix.scrape = scrapeLabels?.resolved(store) }
                for i in ix.series.count..<catalog.count { ix.byName[catalog[i].key.metric, default: []].append(i) }
                ix.series = catalog
            }
            return ix // copy-on-write: the arrays are shared, not copied
        }
        let candidates: [Int]
        if let name = matchers.first(where: { $0.name == Labels.metricName && $0.op == .equal }) {
            candidates = ix.byName[name.value] ?? []
        } else {
            candidates = Array(ix.series.indices)
        }
        // Label values repeat across series (modes, devices): each distinct value is matched once per regex.
        var verdicts = [[String: Bool]](repeating: [:], count: matchers.count)
        var out: [(Int64, Labels, MetricType)] = []
        for (k, i) in candidates.enumerated() {
            if k & 1023 == 1023, TwinTime.nowMillis() > deadline { throw PromQLError.timeout("query timed out in series matching") }
            let s = ix.series[i]
            var ok = true
            for (m, matcher) in matchers.enumerated() {
                let value = ix.scrape?.value(matcher.name, of: s.key) ?? (matcher.name == Labels.metricName ? s.key.metric : s.key.labels.value(matcher.name))
                let verdict: Bool
                if matcher.isRegex {
                    if let v = verdicts[m][value] { verdict = v } else { verdict = matcher.matches(value); verdicts[m][value] = verdict }
                } else { verdict = matcher.matches(value) }
                if !verdict { ok = false; break }
            }
            if ok {
                var pairs = s.key.labels.pairs + [Label(Labels.metricName, s.key.metric)]
                ix.scrape?.add(to: &pairs)
                out.append((s.id, Labels(pairs), s.type))
            }
        }
        return out
    }

    public func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        let found = try matching(matchers, deadline: deadline)
        guard !found.isEmpty else { return [] }
        // The read counts the sealed samples from the rows' directories before decoding any.
        let ids = found.map(\.id)
        let data: [Int64: SampleColumns], horizon: Int64
        if let held = recent?.columns(ids: ids, from: from, to: to, limit: limit) {
            // Memory holds raw samples from `from` on, so the store's oldest raw sample is no later.
            (data, horizon) = (held, .min)
        } else {
            guard let read = try store.sampleColumns(ids: ids, from: from, to: to, limit: limit) else { throw PromQLError.execution(Self.tooMany) }
            // Before the oldest raw sample only rollups can answer — if any are that old (a young store has none;
            // a rollup minute that begins less than a minute before the oldest raw sample holds those same samples).
            let (raw, rollups) = try oldestSamples()
            (data, horizon) = (read, raw > .min + 60_000 && rollups <= raw - 60_000 ? raw : .min)
        }
        if from < horizon, Double(found.count) * ((Double(min(to, horizon)) - Double(from)) / 60_000 + 1) > Double(limit) {
            throw PromQLError.execution(Self.tooMany)
        }
        var out: [SeriesData] = []
        out.reserveCapacity(found.count)
        for s in found {
            var columns = data[s.id] ?? SampleColumns()
            if from < horizon {
                let before = columns.t.first ?? .max
                let early = try minutes(s.id, s.type, from: from, to: min(to, horizon - 1)).filter { $0.0 < before }
                if !early.isEmpty { columns = SampleColumns(t: early.map { $0.0 } + columns.t, v: early.map { $0.1 } + columns.v) }
            }
            guard columns.count > 0 else { continue }
            out.append(SeriesData(labels: s.labels, t: columns.t, v: columns.v))
        }
        return out
    }

    /// Series `id` over `[from, to]` as one sample per minute from the 1-minute rollups (raw samples
    /// reduced the same way where the tier is not written yet): the minute's mean for gauges, its last
    /// value for counters.
    func minutes(_ id: Int64, _ type: MetricType, from: Int64, to: Int64) throws -> [(Int64, Double)] {
        try store.aggregate(id: id, from: from, to: to, step: 60_000).points.map { ($0.t, type == .counter ? $0.last : $0.sum / max($0.count, 1)) }
    }

    /// This source at one sample per minute throughout (the `max_source_resolution=1m` of the query API,
    /// as in Thanos): a week of a 1-second series is 10,080 samples instead of 604,800.
    public var minuteResolution: any SampleSource { MinuteResolution(base: self) }

    private struct MinuteResolution: SampleSource {
        let base: StoreSampleSource
        func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
            let found = try base.matching(matchers, deadline: deadline)
            if Double(found.count) * ((Double(to) - Double(from)) / 60_000 + 1) > Double(limit) { throw PromQLError.execution(StoreSampleSource.tooMany) }
            return try found.compactMap { s in
                let points = try base.minutes(s.id, s.type, from: from, to: to)
                return points.isEmpty ? nil : SeriesData(labels: s.labels, t: points.map { $0.0 }, v: points.map { $0.1 })
            }
        }
    }

    /// The time of the oldest raw sample in the store (`Int64.min` when it has none yet, so nothing is
    /// read from rollups), cached for a minute: retention moves it forward slowly.
    private func oldestSamples() throws -> (raw: Int64, rollups: Int64) {
        let now = TwinTime.nowMillis()
        if let cached = horizons.withLock({ $0 }), now - cached.readAt < 60_000 { return (cached.raw, cached.rollups) }
        let raw = try store.sampleTimeRange()?.0 ?? .min, rollups = try store.oldestRollupTime() ?? .max
        horizons.withLock { $0 = (raw, rollups, now) }
        return (raw, rollups)
    }
}

/// The labels Prometheus adds to what it scrapes, as HostTwin shows them through its Prometheus API so
/// that dashboards and rules written for node_exporter find them: `job` (default "node") and `instance`
/// — the series' `host` label on a hub, the twin's own host name otherwise. A series that already has
/// either label keeps its own (Prometheus' `honor_labels`). Labels with empty values are left out, as
/// Prometheus leaves them out when it ingests node_exporter's `node_os_info{build_id=""}`.
public struct ScrapeLabels: Sendable {
    public var job: String
    /// The instance of series without a `host` label; nil: the store's host entity's hostname, else this machine's.
    public var instance: String?

    public init(job: String = "node", instance: String? = nil) {
        self.job = job
        self.instance = instance
    }

    /// These labels with `instance` decided.
    public func resolved(_ store: TwinStore) -> ScrapeLabels {
        guard instance == nil else { return self }
        // The host entity this twin observed itself (a hub's entities of other hosts carry a `host` attribute).
        let own = try? store.state(at: TwinTime.nowMillis(), kinds: [.host]).first { $0.attributes["host"] == nil }
        let stored = own?.attributes["hostname"]?.description
        return ScrapeLabels(job: job, instance: stored ?? HostName.local)
    }

    /// The value of label `name` (`__name__` included) of series `key` once ``add(to:)`` has added these
    /// labels: series matching reads it without building the labels.
    public func value(_ name: String, of key: SeriesKey) -> String {
        switch name {
        case Labels.metricName: return key.metric
        case "job":
            if let own = key.labels["job"], !own.isEmpty { return own }
            return job
        case "instance":
            if let own = key.labels["instance"], !own.isEmpty { return own }
            if let host = key.labels["host"], !host.isEmpty { return host }
            return instance ?? ""
        default: return key.labels[name] ?? ""
        }
    }

    /// Appends `job` and `instance` to `pairs` where they are missing, and drops labels with empty values
    /// (Prometheus stores none: `{ifalias=""}` is the label's absence).
    public func add(to pairs: inout [Label]) {
        pairs.removeAll { $0.value.isEmpty }
        var job = true, instance = true
        var host: String?
        for p in pairs {
            if p.name == "job" { job = false } else if p.name == "instance" { instance = false } else if p.name == "host" { host = p.value }
        }
        if job { pairs.append(Label("job", self.job)) }
        if instance { pairs.append(Label("instance", host ?? self.instance ?? "")) }
    }
}

/// This machine's host name (gethostname(2)).
public enum HostName {
    public static let local: String = {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}

/// A source that sees only the series of some hosts (their `host` label): a host's page on a hub's
/// dashboard (`host=NAME` on `/api/v1/query` and `/api/v1/query_range`).
public struct HostScopedSource: SampleSource {
    public let base: any SampleSource
    public let hosts: [String]

    public init(base: any SampleSource, hosts: Set<String>) {
        self.base = base
        self.hosts = hosts.sorted()
    }

    public func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        // One selection per host, each with an exact `host` matcher (no regular expression to escape).
        var out: [SeriesData] = []
        for host in hosts {
            out += try base.select(matchers + [try Matcher(name: "host", op: .equal, value: host)], from: from, to: to, limit: limit, deadline: deadline)
        }
        return out
    }
}
