import Foundation
import TwinCore
import TwinQuery
import TwinStorage

/// The anomalies of a host over a time window, from its stored series: every series is streamed,
/// minute by minute (gauges as their mean, counters as their rate), through a ``NoveltyDetector``
/// that first learns from the history before the window; alerts inside the window are reported, with
/// the host-level anomaly rate per minute and early warnings of common failures.
public struct AnomalyReport: Sendable, Encodable {
    /// One alert of one series.
    public struct Alert: Sendable, Encodable {
        public var time: String
        public var series: String
        public var score: Double
        public var value: Double
        /// The series' `host` label (at a hub).
        public var host: String?
    }
    /// The share of series alerting per minute (alerts in the last 10 minutes / series).
    public struct RatePoint: Sendable, Encodable {
        public var time: String
        public var rate: Double
    }
    /// A known failure pattern in its early stage.
    public struct Warning: Sendable, Codable, Equatable {
        public var kind: String
        public var subject: String
        public var evidence: String
        /// The host it is about (at a hub).
        public var host: String?
        /// The series it was read from (`metric{labels}`), what `hosttwin explain` explains; nil for a
        /// warning about state alone (a restart loop).
        public var series: String?

        public init(kind: String, subject: String, evidence: String, host: String? = nil, series: String? = nil) {
            (self.kind, self.subject, self.evidence, self.host, self.series) = (kind, subject, evidence, host, series)
        }
    }
    public var from: String
    public var to: String
    /// Series stored, and those with points in the scanned window (the rate's denominator: a host's
    /// exited processes do not dilute it).
    public var series: Int
    public var liveSeries: Int
    /// Live series per `host` label (at a hub; a single host's are under "").
    public var liveSeriesByHost: [String: Int]
    public var alerts: [Alert]
    /// The series with the most recent alerts first.
    public var mostAnomalous: [Alert]
    public var rate: [RatePoint]
    /// Times the host turned anomalous (rate crossing 5 % from below).
    public var hostAnomalous: [String]
    public var warnings: [Warning]
    enum CodingKeys: String, CodingKey {
        case from, to, series, liveSeries = "live_series", liveSeriesByHost = "live_series_by_host", alerts
        case mostAnomalous = "most_anomalous", rate, hostAnomalous = "host_anomalous", warnings
    }
}

public enum AnomalyScan {
    /// The resolution series are scanned at.
    public static let step: Int64 = 60_000
    /// Host-level: share of series alerting within 10 minutes that makes the host anomalous.
    public static let hostThreshold = 0.05

    /// Calls `body` with the index of each of `ids`, in order, what `prepare` made for it, and its minutes
    /// from the start `prepare` gave to `to` (none when that start is after `to`). Reads `chunk` series at
    /// a time, those of a chunk with the same start in one read (``TwinStore/aggregate(ids:from:to:step:)``),
    /// so a row shared by a group of series is inflated once, not once per series, and without filling the
    /// store's caches (the head log it decoded is let go at the end); `prepare` runs a chunk ahead of its
    /// reads, so what it makes (a restored detector) is held for a chunk only.
    static func minutes<Prepared>(store: TwinStore, ids: [Int64], to: Int64, chunk: Int = 128,
                                  prepare: (Int) -> (from: Int64, value: Prepared),
                                  _ body: (Int, Prepared, [RollupPoint]) throws -> Void) throws {
        defer { store.releaseBackgroundReads() }
        var lower = 0
        while lower < ids.count {
            let range = lower..<min(lower + chunk, ids.count)
            let prepared = range.map(prepare)
            var byStart: [Int64: [Int64]] = [:]
            for (i, p) in zip(range, prepared) where p.from <= to { byStart[p.from, default: []].append(ids[i]) }
            var points: [Int64: [RollupPoint]] = [:]
            for (start, batch) in byStart {
                points.merge(try store.aggregate(ids: batch, from: start, to: to, step: step, cached: false).points) { first, _ in first }
            }
            for (i, p) in zip(range, prepared) { try body(i, p.value, points[ids[i]] ?? []) }
            lower = range.upperBound
        }
    }

    /// Where a pass picks up a series from: nothing (it learns from what it reads), a restored detector, or
    /// a saved state not read yet (``TwinStore/detectorStates(fedSince:)``), restored only when the series
    /// has minutes to feed: most of a busy host's are exited processes' that have none.
    enum Resume {
        case fresh
        case restored(SeriesScan)
        case saved(series: Int64, through: Int64)

        /// The last minute fed, if any.
        var through: Int64? {
            switch self {
            case .fresh: nil
            case .restored(let scan): scan.through
            case .saved(_, let through): through
            }
        }

        /// The detector to feed: a saved state is read now; one that cannot be read (damaged) gives a fresh
        /// detector, which learns from the minutes read.
        func scan(_ store: TwinStore) -> SeriesScan? {
            switch self {
            case .fresh: return nil
            case .restored(let scan): return scan
            case .saved(let id, _):
                guard let saved = try? store.detectorState(series: id) else { return nil }
                return SeriesScan(state: saved.bytes)
            }
        }

        /// The minute to read `series` from when its saved state (`through`) was not fed by the monitor's
        /// last pass: after the minute that pass fed the others to (`silentThrough`, ``RetiredDetectors``),
        /// when it is older than `limit`, as it found the series silent until then. So a pass reads the
        /// host's ended series in the same reads as its live ones, not each from its own last minute.
        /// An agent's series may receive older minutes late (its backlog): they go on from their own.
        static func start(after through: Int64, of series: SeriesInfo, silentThrough: Int64?, limit: Int64) -> Int64 {
            guard let silentThrough, silentThrough > through, silentThrough <= limit, series.key.labels["host"] == nil else { return through + step }
            return silentThrough + step
        }
    }

    /// Scans `[to - window, to]`: each series from the state ``AnomalyMonitor`` saved when it ends before
    /// `to` and either ends before the window or recorded its alerts since the window's start (then those
    /// alerts are taken from it: the monitor saves every few minutes, so a rule's ten-minute scan reads the
    /// minutes since the last save, not the hours of history); else learning from `history` before the
    /// window. Throws ``PromQLError/timeout(_:)`` once the clock passes `deadline` (ms), so a dashboard or
    /// API request never waits on a huge store. Without `warnings` the early warnings (forecasts, restart
    /// loops, leak suspects) are not looked for: a rule counting anomalous series needs only the scan.
    public static func run(store: TwinStore, to: Int64, window: Int64, history: Int64, deadline: Int64 = .max,
                           warnings includeWarnings: Bool = true) throws -> AnomalyReport {
        let from = to - window
        let start = (from - history) / step * step
        let firstMinute = from / step * step
        let catalog = try store.seriesCatalog()
        let retired = (try? store.retiredDetectors()) ?? nil
        // The states a scan may take alerts from are read whole; the older ones only if their series has
        // minutes to feed.
        let (states, older) = (try? store.detectorStates(fedSince: firstMinute)) ?? ([:], [:])
        var alerts: [AnomalyReport.Alert] = []
        var alertMinutes: [Int64: Int] = [:]
        var live: [String: Int] = [:]
        try minutes(store: store, ids: catalog.map(\.id), to: to, prepare: { k -> (from: Int64, value: Resume) in
            let id = catalog[k].id
            if let through = older[id] {
                return (Resume.start(after: through, of: catalog[k], silentThrough: retired?.through, limit: to), .saved(series: id, through: through))
            }
            guard let saved = states[id] else {
                // A retired series silent since before the window: only what came after can count.
                if let retired, retired.series.contains(id), retired.through <= to, retired.through - AnomalyMonitor.retireAfter < firstMinute {
                    return (retired.through + step, .fresh)
                }
                return (start, .fresh)
            }
            guard saved.through <= to, let restored = SeriesScan(state: saved.bytes), saved.through < firstMinute || restored.recordedSince <= firstMinute else {
                return (start, .fresh)
            }
            return (saved.through + step, .restored(restored))
        }) { k, resume, points in
            if k & 63 == 0, TwinTime.nowMillis() > deadline {
                throw PromQLError.timeout("the anomaly scan ran out of time after \(k) of \(catalog.count) series; scan a shorter window")
            }
            let s = catalog[k]
            let host = s.key.labels["host"]
            func alert(_ t: Int64, _ score: Double, _ value: Double) {
                alerts.append(.init(time: TwinTime.rfc3339(t), series: s.key.description, score: score, value: value, host: host))
                alertMinutes[t, default: 0] += 1
            }
            // The alerts a resumed state recorded inside the window (a state not read yet ends before it).
            if case .restored(let resumed) = resume { for a in resumed.alerts where a.t >= from { alert(a.t, a.score, a.value) } }
            if (points.last?.t ?? resume.through ?? .min) >= firstMinute { live[host ?? "", default: 0] += 1 }
            guard !points.isEmpty, resume.through != nil || points.count > 2 else { return }
            var scan = resume.scan(store) ?? SeriesScan()
            for p in points {
                guard let (x, score) = scan.feed(p, counter: s.type == .counter) else { continue }
                if score >= NoveltyDetector.alertThreshold, p.t >= from { alert(p.t, score, x) }
            }
        }
        alerts.sort { $0.time < $1.time }
        // Host-level rate: alerts in the trailing 10 minutes over the series live in the window.
        var rate: [AnomalyReport.RatePoint] = []
        var turned: [String] = []
        var above = false
        let liveCount = live.values.reduce(0, +)
        let n = Double(max(liveCount, 1))
        var t = from / step * step
        while t <= to {
            var count = 0
            var u = t - 9 * step
            while u <= t { count += alertMinutes[u] ?? 0; u += step }
            let r = Double(count) / n
            rate.append(.init(time: TwinTime.rfc3339(t), rate: r))
            if r >= hostThreshold, !above { turned.append(TwinTime.rfc3339(t)) }
            above = r >= hostThreshold
            t += step
        }
        var latestBySeries: [String: AnomalyReport.Alert] = [:]
        for a in alerts { latestBySeries[a.series] = a }
        let most = latestBySeries.values.sorted { ($0.time, $0.score) > ($1.time, $1.score) }.prefix(10)
        return AnomalyReport(from: TwinTime.rfc3339(from), to: TwinTime.rfc3339(to), series: catalog.count, liveSeries: liveCount,
                             liveSeriesByHost: live, alerts: alerts,
                             mostAnomalous: Array(most), rate: rate, hostAnomalous: turned,
                             warnings: includeWarnings ? try warnings(store: store, catalog: catalog, from: from, to: to) : [])
    }

    /// Early warnings: sustained pressure, error counters rising, memory-leak suspects, filesystems filling
    /// fast or full and memory running out, filesystems filling by forecast, processes restarting in a loop.
    public static func warnings(store: TwinStore, catalog: [SeriesInfo], from: Int64, to: Int64) throws -> [AnomalyReport.Warning] {
        var out: [AnomalyReport.Warning] = []
        let tenMinutes: Int64 = 600_000
        for s in catalog {
            let name = s.key.metric
            // PSI: more than 10 % of the time stalled or waiting over the last 10 minutes.
            if name.hasPrefix("node_pressure_"), s.type == .counter,
               let pts = try? store.samples(ids: [s.id], from: to - tenMinutes, to: to)[s.id], let a = pts.first, let b = pts.last, b.0 > a.0 {
                let share = (b.1 - a.1) / (Double(b.0 - a.0) / 1000)
                if share > 0.1 {
                    out.append(.init(kind: "sustained pressure", subject: s.key.description,
                                     evidence: String(format: "%.0f %% of the last 10 minutes stalled or waiting", share * 100), host: s.key.labels["host"], series: s.key.description))
                }
            }
            // Error and drop counters that rose within the window after not rising before it.
            let lower = name.lowercased()
            if s.type == .counter, lower.contains("err") || lower.contains("drop") || lower.contains("fail") || lower.contains("oom_kill"),
               let pts = try? store.samples(ids: [s.id], from: from - (to - from), to: to)[s.id], pts.count > 2 {
                let before = pts.filter { $0.0 < from }, inside = pts.filter { $0.0 >= from }
                if let b0 = before.first, let b1 = before.last, let i0 = inside.first, let i1 = inside.last, b1.1 - b0.1 == 0, i1.1 > i0.1 {
                    out.append(.init(kind: "error counter rising", subject: s.key.description,
                                     evidence: "rose by \(PromNumber.format(i1.1 - i0.1)) since \(TwinTime.rfc3339(i0.0)) after no change before", host: s.key.labels["host"], series: s.key.description))
                }
            }
        }
        // Memory-leak suspects: a process whose resident memory grew by a fifth or more over at least an
        // hour of the window, rising (or flat) in nine of ten minutes, at a pace that would take a tenth of
        // the host's memory within a day (30 MB an hour on a 23 GB host is not a threat; on a 1 GB one it
        // is); or, fast, one growing steadily over the last two minutes (``fastLeaks``).
        let rss = catalog.filter { $0.key.metric == "hosttwin_process_resident_memory_bytes" }
        let fastLeaks = try fastLeaks(store: store, rss: rss, to: to)
        out += fastLeaks
        var memoryTotal: [String: Double] = [:]
        for s in catalog where s.key.metric == "node_memory_MemTotal_bytes" {
            if let v = try store.samples(ids: [s.id], from: from, to: to)[s.id]?.last?.1 { memoryTotal[s.key.labels["host"] ?? ""] = v }
        }
        for s in rss where !fastLeaks.contains(where: { $0.series == s.key.description }) {
            let pts = try store.aggregate(id: s.id, from: from, to: to, step: step).points.filter { $0.count > 0 }.map { $0.sum / $0.count }
            guard pts.count >= 60, let first = pts.first, let last = pts.last, first > 0, last >= first * 1.2 else { continue }
            if let total = memoryTotal[s.key.labels["host"] ?? ""], (last - first) / Double(pts.count) * 1440 < 0.1 * total { continue }
            let rising = zip(pts.dropFirst(), pts).filter { $0 >= $1 }.count
            if Double(rising) >= 0.9 * Double(pts.count - 1) {
                out.append(.init(kind: "memory leak suspect", subject: s.key.description,
                                 evidence: String(format: "resident memory %.0f → %.0f MB over %d minutes, rising or flat in %d of them", first / 1e6, last / 1e6, pts.count, rising),
                                 host: s.key.labels["host"], series: s.key.description))
            }
        }
        // Running out now: a filesystem or memory falling fast over the last minutes (or already
        // exhausted), from the raw samples alone, so a twin minutes old warns too.
        let fast = try exhaustionFound(store: store, catalog: catalog, to: to)
        out += oncePerFilesystem(fast)
        // Filesystems on course to fill within a day — and within ten times the span the trend was seen
        // over (half an hour of a build's writes says little about tomorrow), once per filesystem.
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        let fs = try PromQLParser.parse("node_filesystem_avail_bytes{fstype!~\"\(pseudoFilesystems.sorted().joined(separator: "|"))\"}")
        var filling: [(labels: Labels, warning: AnomalyReport.Warning)] = []
        for f in try QueryForecaster.forecast(engine: engine, expr: fs, now: to, history: max(to - from, 3_600_000), horizon: 86_400_000, exhaustionBelow: 0) {
            if let full = f.exhaustion?.expected, full - f.last.t <= 10 * (f.last.t - f.first),
               !fast.contains(where: { Self.sameFilesystem($0.labels, f.labels) }) {
                filling.append((f.labels, .init(kind: "filesystem filling", subject: f.labels["mountpoint"] ?? f.labels.text,
                                                evidence: "expected full at \(TwinTime.rfc3339(full)) (\(f.model))", host: f.labels["host"],
                                                series: SeriesKey("node_filesystem_avail_bytes", Labels(sorted: f.labels.pairs.filter { $0.name != "__name__" })).description)))
            }
        }
        out += oncePerFilesystem(filling)
        out += try restartLoops(store: store, from: from, to: to)
        return out.sorted { ($0.host ?? "", $0.kind, $0.subject) < ($1.host ?? "", $1.kind, $1.subject) }
    }

    /// Processes restarting in a loop: the same command line started again by the same owner — its
    /// systemd service (the `unit` attribute), or else the same parent process other than init (a
    /// supervisor, a shell loop) — within 3 s of the previous run's exit (a supervisor restarts at once or
    /// after a second or two; a launcher keeps its own schedule), five runs or more in a row, each
    /// under a minute and lasting about as long as the one before (a factor of 2; runs under 2 s alike),
    /// and — where the twin sees exit statuses (`after_exit`: root on Linux) — more than half of the
    /// restarts following a failed exit. A program launched many times by different parents, daemons
    /// adopted by init outside any service (a browser's crash handler), or a polling loop whose program
    /// exits 0 is not a loop.
    public static func restartLoops(store: TwinStore, from: Int64, to: Int64) throws -> [AnomalyReport.Warning] {
        var runs = ProcessRuns()
        runs.started(try store.versionsStarting(from: from, to: to, kinds: [.processes], attributes: ProcessRuns.attributes))
        return runs.restartLoops()
    }

    /// The fewest samples of the last two minutes a fast leak is judged on: eight, so that a process observed
    /// every 15 s (a relaxed or configured interval) is judged too; at 1 s a leaking (busy) process has a
    /// hundred or more. The fit (R² ≥ 0.95), the share of rising steps and the 90 s span still apply.
    static let fastLeakSamples = 8

    /// Processes whose resident memory grew steadily over the last two minutes: alive now, `fastLeakSamples` or more samples over
    /// at least 90 s, grown by a quarter and by 256 MB or more, rising or flat in 9 of 10 samples and rising
    /// in more than half, and a straight line explaining 95 % of it (a leak grows evenly; a compiler or a
    /// cache grows in phases).
    static func fastLeaks(store: TwinStore, rss: [SeriesInfo], to: Int64) throws -> [AnomalyReport.Warning] {
        let span: Int64 = 120_000
        let recent = try store.samples(ids: rss.map(\.id), from: to - span, to: to)
        var out: [AnomalyReport.Warning] = []
        for s in rss {
            guard let p = recent[s.id], p.count >= fastLeakSamples, let a = p.first, let b = p.last, b.0 >= to - 10_000, b.0 - a.0 >= 90_000,
                  b.1 - a.1 >= 256e6, b.1 >= a.1 * 1.25 else { continue }
            let rising = zip(p.dropFirst(), p).filter { $0.1 >= $1.1 }.count, growing = zip(p.dropFirst(), p).filter { $0.1 > $1.1 }.count
            guard Double(rising) >= 0.9 * Double(p.count - 1), 2 * growing > p.count - 1, let fit = ExhaustionTrend.linearFit(p), fit.r2 >= 0.95 else { continue }
            out.append(.init(kind: "memory leak suspect", subject: s.key.description,
                             evidence: String(format: "resident memory %.0f → %.0f MB in %d s (%.1f MB/s, R² %.2f), rising or flat in %d of %d samples",
                                              a.1 / 1e6, b.1 / 1e6, (b.0 - a.0) / 1000, fit.slope / 1e6, fit.r2, rising, p.count - 1),
                             host: s.key.labels["host"], series: s.key.description))
        }
        return out
    }

    /// Whether two series' labels are of one filesystem: the same host and device (or mount point).
    static func sameFilesystem(_ a: Labels, _ b: Labels) -> Bool {
        a["host"] == b["host"] && (a["device"].map { $0 == b["device"] } ?? (a["mountpoint"] == b["mountpoint"]))
    }

    /// One warning per filesystem: of warnings about the same device on the same host (a bind mount
    /// such as /run/netns of /), the one at the shortest mount point. Others pass through.
    static func oncePerFilesystem(_ found: [(labels: Labels, warning: AnomalyReport.Warning)]) -> [AnomalyReport.Warning] {
        var kept: [String: Int] = [:]
        var out: [AnomalyReport.Warning] = []
        for (labels, w) in found {
            guard let device = labels["device"], let mount = labels["mountpoint"] else { out.append(w); continue }
            let key = (labels["host"] ?? "") + "\u{0}" + device + "\u{0}" + w.kind
            if let k = kept[key] {
                if (mount.count, mount) < (out[k].subject.count, out[k].subject) { out[k] = w }
            } else {
                kept[key] = out.count
                out.append(w)
            }
        }
        return out
    }

    /// Pseudo filesystems never worth a warning.
    static let pseudoFilesystems: Set<String> = ["tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "nsfs", "proc", "sysfs", "cgroup", "cgroup2", "autofs"]

    /// Filesystems and memory running out within six hours at the rate of the last five minutes, or
    /// already exhausted (``ExhaustionTrend``).
    public static func exhaustion(store: TwinStore, catalog: [SeriesInfo], to: Int64) throws -> [AnomalyReport.Warning] {
        oncePerFilesystem(try exhaustionFound(store: store, catalog: catalog, to: to))
    }

    /// ``exhaustion(store:catalog:to:)`` with each warning's series labels, every mount point apart.
    static func exhaustionFound(store: TwinStore, catalog: [SeriesInfo], to: Int64) throws -> [(labels: Labels, warning: AnomalyReport.Warning)] {
        var capacity: [SeriesKey: Int64] = [:]
        for s in catalog where s.key.metric == "node_filesystem_size_bytes" || s.key.metric == "node_memory_MemTotal_bytes" {
            capacity[s.key] = s.id
        }
        var found: [(labels: Labels, warning: AnomalyReport.Warning)] = []
        for s in catalog {
            let sizeMetric: String, kind: String, subject: String
            switch s.key.metric {
            case "node_filesystem_avail_bytes":
                guard !pseudoFilesystems.contains(s.key.labels["fstype"] ?? "") else { continue }
                (sizeMetric, kind, subject) = ("node_filesystem_size_bytes", "filesystem filling fast", s.key.labels["mountpoint"] ?? s.key.labels.text)
            case "node_memory_MemAvailable_bytes":
                (sizeMetric, kind, subject) = ("node_memory_MemTotal_bytes", "memory running out", "memory")
            default: continue
            }
            guard let sizeID = capacity[SeriesKey(sizeMetric, s.key.labels)],
                  let size = try store.samples(ids: [sizeID], from: to - ExhaustionTrend.window, to: to)[sizeID]?.last?.1,
                  let points = try store.samples(ids: [s.id], from: to - ExhaustionTrend.window, to: to)[s.id],
                  let f = ExhaustionTrend.assess(points, capacity: size, now: to, horizon: 6 * 3_600_000) else { continue }
            let gb = { (v: Double) in String(format: "%.2f GB", v / 1e9) }
            let evidence = f.exhausted
                ? "\(gb(f.to.value)) free of \(gb(size)) at \(TwinTime.rfc3339(f.to.t)) (was \(gb(f.from.value)) at \(TwinTime.rfc3339(f.from.t)))"
                : "free \(gb(f.from.value)) → \(gb(f.to.value)) in \((f.to.t - f.from.t) / 1000) s (\(String(format: "%.1f", -f.ratePerSecond / 1e6)) MB/s); out at \(TwinTime.rfc3339(f.exhaustedAt)) at this rate"
            found.append((s.key.labels, .init(kind: f.exhausted ? (kind == "memory running out" ? "memory exhausted" : "filesystem full") : kind,
                                              subject: subject, evidence: evidence, host: s.key.labels["host"], series: s.key.description)))
        }
        return found
    }
}
