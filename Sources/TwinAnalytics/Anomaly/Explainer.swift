import TwinCore
import TwinStorage

/// What moved with a series around a moment, ranked: the answer of `hosttwin explain`.
public struct Explanation: Sendable, Codable {
    /// One piece of evidence: a stored series, or a group of state changes (processes of one name, a
    /// service, a port) seen as counts per step.
    public struct Item: Sendable, Codable, Equatable {
        /// "series" or "state".
        public var kind: String
        /// The series (`metric{labels}`) or the group ("processes sleep", "services ssh.service").
        public var subject: String
        /// The process it belongs to (its `name` label or attribute), when it is about processes.
        public var process: String?
        /// Ranking score in [0, 1.1]: |correlation| (0.8 of it when it moved only after the target), plus
        /// 0.1 for a process, service or state change (what host-wide totals sum up).
        public var score: Double
        /// Pearson correlation of the pair of views that agree best (level, change per step, rate, count).
        public var correlation: Double
        /// Its onset minus the target's, in seconds (negative: it moved first).
        public var lagSeconds: Double
        public var detail: String
        enum CodingKeys: String, CodingKey { case kind, subject, process, score, correlation, lagSeconds = "lag_seconds", detail }
    }
    public var target: String
    public var from: String
    public var to: String
    public var stepSeconds: Double
    /// When the target started to move (the largest shift of its best view).
    public var onset: String
    /// The evidence, best first (at most the limit asked for).
    public var ranked: [Item]
    /// Series of the target's own resource (its family and device or mount point): they move with it by
    /// construction and are listed apart, not ranked.
    public var sameResource: [Item]
    /// Candidates compared.
    public var candidates: Int
    enum CodingKeys: String, CodingKey {
        case target, from, to, stepSeconds = "step_seconds", onset, ranked, sameResource = "same_resource", candidates
    }
}

/// Ranks the stored series and state changes that moved with a target series over a window before a
/// moment. Each series is bucketed into about 120 steps (gauges as their last value and its change per
/// step, counters as their rate; absence — before a process started, after it exited — counts as 0);
/// state changes of processes (by name), services and listening ports become counts per step (appearances,
/// departures, changes) and population (appeared minus gone so far). A candidate's score is the largest |Pearson
/// correlation| between one of its views and one of the target's, cut to 0.8 of it when it started to
/// move after the target did (a cause leads or coincides), plus 0.1 for evidence about a process,
/// service or state change, so that the things host-wide totals add up are named before the totals.
public enum Explainer {
    /// Buckets a window is cut into.
    static let buckets = 120

    public static func explain(store: TwinStore, target: SeriesInfo, at: Int64, window: Int64, limit: Int = 10, deadline: Int64 = .max) throws -> Explanation {
        let dataStart = try store.sampleTimeRange()?.0 ?? (at - window)
        // The window, cut to where the target has samples (a file system mounted a minute ago is
        // explained over that minute, not as appearing from nothing).
        guard let targetFirst = try store.samples(ids: [target.id], from: max(at - window, dataStart), to: at)[target.id]?.first?.0 else {
            throw TwinError.badInput("\(target.key) has no samples in the \(window / 1000) s before \(TwinTime.rfc3339(at))")
        }
        let from = max(at - window, dataStart, targetFirst)
        guard at - from >= 10_000 else { throw TwinError.badInput("less than 10 s of \(target.key) before \(TwinTime.rfc3339(at))") }
        let step = max(1000, ((at - from) / Int64(buckets) + 999) / 1000 * 1000)
        let n = Int((at - from) / step)
        let start = at - Int64(n) * step
        let host = target.key.labels["host"]
        let catalog = try store.seriesCatalog().filter { $0.key.labels["host"] == host && $0.id != target.id }
        let targetPoints = try store.samples(ids: [target.id], from: start - step, to: at)[target.id] ?? []
        let targetViews = views(bucket(targetPoints, start: start, step: step, n: n), counter: isCounter(target.type, targetPoints))
        guard !targetViews.isEmpty else { throw TwinError.badInput("\(target.key) did not move between \(TwinTime.rfc3339(start)) and \(TwinTime.rfc3339(at))") }
        let targetOnset = targetViews.map { onset($0.values) }.max { $0.shift < $1.shift }!.index

        var ranked: [Explanation.Item] = [], same: [Explanation.Item] = []
        /// `detail` nil: the name of the candidate's view that matched (level, change per step, rate).
        func consider(kind: String, subject: String, process: String?, candidateViews: [View], detail: String?, sameResource: Bool) {
            var best: (r: Double, view: View)?
            for c in candidateViews {
                for t in targetViews {
                    let r = pearson(t.values, c.values)
                    if abs(r) > abs(best?.r ?? 0) { best = (r, c) }
                }
            }
            guard let best, abs(best.r) >= 0.3 else { return }
            let detail = detail.map { "\($0) (\(best.view.label))" } ?? best.view.label
            let lag = onset(best.view.values).index - targetOnset
            var score = abs(best.r) * (lag > max(2, n / 10) ? 0.8 : 1)
            if process != nil || kind == "state" { score += 0.1 }
            let item = Explanation.Item(kind: kind, subject: subject, process: process, score: score, correlation: best.r,
                                        lagSeconds: Double(Int64(lag) * step) / 1000, detail: detail)
            if sameResource { same.append(item) } else { ranked.append(item) }
        }
        // Series, read in batches.
        var candidates = 0
        for batch in stride(from: 0, to: catalog.count, by: 512).map({ Array(catalog[$0..<min($0 + 512, catalog.count)]) }) {
            if TwinTime.nowMillis() > deadline { throw TwinError.unavailable("explain stopped at its deadline after \(candidates) series") }
            let points = try store.samples(ids: batch.map(\.id), from: start - step, to: at)
            for s in batch {
                guard let p = points[s.id], !p.isEmpty else { continue }
                let v = views(bucket(p, start: start, step: step, n: n), counter: isCounter(s.type, p))
                guard !v.isEmpty else { continue }
                candidates += 1
                consider(kind: "series", subject: s.key.description, process: s.key.metric.hasPrefix("hosttwin_process_") ? s.key.labels["name"] : nil,
                         candidateViews: v, detail: nil, sameResource: sameResource(target.key, s.key))
            }
        }
        // One item per process: its series that moved most.
        var seenPID = Set<String>()
        ranked.sort { $0.score > $1.score }
        ranked = ranked.filter { item in
            guard item.process != nil, let key = try? SeriesKey.parse(item.subject), let pid = key.labels["pid"] else { return true }
            return seenPID.insert(pid).inserted
        }
        // State changes as counts per step.
        for group in try stateGroups(store: store, host: host, start: start, step: step, n: n) {
            candidates += 1
            consider(kind: "state", subject: group.subject, process: group.process, candidateViews: group.views,
                     detail: group.detail, sameResource: false)
        }
        ranked.sort { ($0.score, $1.subject) > ($1.score, $0.subject) }
        same.sort { $0.score > $1.score }
        return Explanation(target: target.key.description, from: TwinTime.rfc3339(start), to: TwinTime.rfc3339(at), stepSeconds: Double(step) / 1000,
                           onset: TwinTime.rfc3339(start + Int64(targetOnset) * step), ranked: Array(ranked.prefix(limit)),
                           sameResource: Array(same.prefix(limit)), candidates: candidates)
    }

    /// The target's own resource: the same family (`node_filesystem`, `node_memory`, `node_pressure`,
    /// ...) with no conflicting mount point or device, or the same device under another family (a
    /// filesystem's `/dev/loop0` and the disk `loop0`).
    static func sameResource(_ t: SeriesKey, _ c: SeriesKey) -> Bool {
        func family(_ m: String) -> String { m.split(separator: "_", maxSplits: 2).prefix(2).joined(separator: "_") }
        func device(_ k: SeriesKey) -> String? { k.labels["device"].map { $0.hasPrefix("/dev/") ? String($0.dropFirst(5)) : $0 } }
        if let d = device(t), d == device(c) { return true }
        guard family(t.metric) == family(c.metric) else { return false }
        for label in ["mountpoint", "device", "pid", "cpu", "interface"] {
            if let a = t.labels[label], let b = c.labels[label], a != b { return false }
        }
        return true
    }

    /// Values per bucket: index 0 the bucket before the window (a counter's previous value), index i ≥ 1
    /// `[start + (i-1)·step, start + i·step)`; the last value in it, carried forward over empty buckets.
    /// A series that appears later than the second bucket (a process that started) is 0 before it, one
    /// that ends more than three steps before the window does is 0 after it (absent); one there from the
    /// start is its first value before it. A counter's first bucket after absence repeats the next one's
    /// increase (its first value holds what it counted before it was seen).
    static func bucket(_ points: [(Int64, Double)], start: Int64, step: Int64, n: Int) -> (values: [Double], appeared: Int?) {
        var out = [Double](repeating: .nan, count: n + 1) // index 0: the bucket before the window
        var j = 0
        for i in 0...n {
            let end = start + Int64(i) * step
            var last: Double?
            while j < points.count, points[j].0 < end { last = points[j].1; j += 1 }
            if let last { out[i] = last }
        }
        // Carry forward inside the series' span, 0 outside it.
        let first = out.firstIndex { !$0.isNaN }, lastSeen = out.lastIndex { !$0.isNaN }
        guard let first, let lastSeen else { return ([], nil) }
        let endsEarly = points.last!.0 < start + Int64(n) * step - 3 * step
        let appeared = first > 1 ? first : nil
        for i in 0...n {
            if i < first { out[i] = appeared == nil ? out[first] : 0 } else if i > lastSeen { out[i] = endsEarly ? 0 : out[lastSeen] } else if out[i].isNaN { out[i] = out[i - 1] }
        }
        return (out, appeared)
    }

    /// Whether a series is read as a counter: typed so, or untyped and never falling in the window
    /// (node_exporter's vmstat and netstat totals are untyped; their level only says that time passed and
    /// would correlate with anything that grows).
    static func isCounter(_ type: MetricType, _ points: [(Int64, Double)]) -> Bool {
        type == .counter || (type == .untyped && zip(points.dropFirst(), points).allSatisfy { $0.1 >= $1.1 })
    }

    /// One way of looking at a series per step, named as `explain` reports it.
    typealias View = (label: String, values: [Double])

    /// A gauge's level and change per step; a counter's increase per step (resets count from 0).
    static func views(_ bucketed: (values: [Double], appeared: Int?), counter: Bool) -> [View] {
        let b = bucketed.values
        guard b.count > 2 else { return [] }
        let change = zip(b.dropFirst(), b).map { $0 - $1 }
        guard counter else { return [("level", Array(b.dropFirst())), ("change per step", change)].filter { moves($0.values) } }
        var rate = zip(b.dropFirst(), change).map { value, d in d >= 0 ? d : value }
        if let i = bucketed.appeared, i < rate.count { rate[i - 1] = rate[i] }
        return moves(rate) ? [("rate", rate)] : []
    }

    /// The split that best separates a view's mean before from after (the index of the first step after).
    static func onset(_ x: [Double]) -> (index: Int, shift: Double) {
        let n = x.count
        guard n > 2 else { return (0, 0) }
        let sd = variance(x).squareRoot()
        var prefix = 0.0, best = (index: 0, shift: 0.0)
        let total = x.reduce(0, +)
        for k in 1..<n {
            prefix += x[k - 1]
            let a = prefix / Double(k), b = (total - prefix) / Double(n - k)
            // The t-like statistic of a mean shift at k.
            let shift = abs(b - a) * (Double(k * (n - k)) / Double(n)).squareRoot() / max(sd, 1e-12)
            if shift > best.shift { best = (k, shift) }
        }
        return best
    }

    /// Whether a view varies by more than rounding: a steady rate summed in floating point wobbles in its
    /// last bits, and such wobble correlates with anything.
    static func moves(_ x: [Double]) -> Bool {
        let scale = x.reduce(0) { max($0, abs($1)) }
        return variance(x).squareRoot() > 1e-9 * scale && scale > 0
    }

    static func variance(_ x: [Double]) -> Double {
        guard x.count > 1 else { return 0 }
        let m = x.reduce(0, +) / Double(x.count)
        return x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count)
    }

    static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = min(a.count, b.count)
        guard n > 2 else { return 0 }
        let ma = a.prefix(n).reduce(0, +) / Double(n), mb = b.prefix(n).reduce(0, +) / Double(n)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<n {
            let x = a[i] - ma, y = b[i] - mb
            sab += x * y; saa += x * x; sbb += y * y
        }
        guard saa > 0, sbb > 0 else { return 0 }
        return sab / (saa * sbb).squareRoot()
    }

    struct StateGroup { var subject: String; var process: String?; var views: [View]; var detail: String }

    /// Processes (by name), services and listening ports that appeared, changed or went in the window:
    /// appearances, departures and changes per step, and the population (appeared minus gone so far).
    static func stateGroups(store: TwinStore, host: String?, start: Int64, step: Int64, n: Int) throws -> [StateGroup] {
        let end = start + Int64(n) * step
        let kinds: [EntityKind] = [.processes, .services, .listeningPorts]
        let started = try store.versionsStarting(from: start, to: end, kinds: kinds)
        let ended = try store.versionsEnding(from: start, to: end).filter { kinds.contains($0.kind) }
        func hostOf(_ v: EntityVersion) -> String? { v.attributes["host"]?.description }
        func group(_ v: EntityVersion) -> (String, String?) {
            if v.kind == .processes, case .string(let name)? = v.attributes["name"] { return ("processes \(name)", name) }
            return ("\(v.kind.rawValue) \(v.key)", nil)
        }
        // An entity key's version boundaries: a start with no end at the same moment is an appearance.
        var endsAt = Set<String>(), startsAt = Set<String>()
        for v in ended where hostOf(v) == host { endsAt.insert("\(v.kind.rawValue)\u{0}\(v.key)\u{0}\(v.validTo!)") }
        for v in started where hostOf(v) == host { startsAt.insert("\(v.kind.rawValue)\u{0}\(v.key)\u{0}\(v.validFrom)") }
        // Per group: appearances, departures and changes per step.
        var groups: [String: (process: String?, counts: [[Double]])] = [:]
        func record(_ v: EntityVersion, at t: Int64, delta: Int) {
            let i = Int((t - start) / step)
            guard i >= 0, i < n else { return }
            let (subject, process) = group(v)
            var g = groups[subject] ?? (process, Array(repeating: [Double](repeating: 0, count: n), count: 3))
            g.counts[delta > 0 ? 0 : delta < 0 ? 1 : 2][i] += 1
            groups[subject] = g
        }
        for v in started where hostOf(v) == host {
            record(v, at: v.validFrom, delta: endsAt.contains("\(v.kind.rawValue)\u{0}\(v.key)\u{0}\(v.validFrom)") ? 0 : 1)
        }
        for v in ended where hostOf(v) == host {
            if !startsAt.contains("\(v.kind.rawValue)\u{0}\(v.key)\u{0}\(v.validTo!)") { record(v, at: v.validTo!, delta: -1) }
        }
        return groups.map { subject, g in
            var population = [Double](repeating: 0, count: n), sum = 0.0
            for i in 0..<n { sum += g.counts[0][i] - g.counts[1][i]; population[i] = sum }
            let total = g.counts.map { Int($0.reduce(0, +)) }
            let views = zip(["appearances per step", "departures per step", "changes per step", "population"], g.counts + [population]).map { View($0, $1) }
            return StateGroup(subject: subject, process: g.process, views: views.filter { moves($0.values) },
                              detail: "\(total[0]) appeared, \(total[1]) gone, \(total[2]) changed")
        }
    }
}
