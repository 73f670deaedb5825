import TwinCore
import TwinQuery

/// One alert: an element of an alerting rule's vector, with its state.
public struct Alert: Sendable, Equatable {
    public enum State: String, Sendable, Codable {
        /// The condition holds, for less than the rule's `for:`.
        case pending
        /// The condition has held for `for:` (or keep_firing_for keeps it firing).
        case firing
        /// It fired and stopped (kept 15 minutes so notifications can say it resolved).
        case inactive
    }

    public var group: String
    public var rule: String
    /// The element's labels without `__name__`, the rule's labels, and `alertname`.
    public var labels: Labels
    public var annotations: Labels
    public var state: State
    /// When the condition began to hold (ms).
    public var activeAt: Int64
    public var firedAt: Int64?
    public var resolvedAt: Int64?
    public var keepFiringSince: Int64?
    /// The condition's value at the last evaluation.
    public var value: Double
}

extension Alert {
    /// The value as Prometheus' API writes it (`9.5e-01`).
    public var valueText: String { GoFormat.exponent(value) }
}

/// A change of an alert's state, as stored (alert events) and notified.
public struct AlertTransition: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A new alert, waiting out `for:`.
        case pending
        case firing
        /// A firing alert whose condition stopped holding.
        case resolved
        /// A pending alert whose condition stopped holding before it fired.
        case cleared
    }
    public var kind: Kind
    public var time: Int64
    public var alert: Alert
}

/// How one rule fared at its last evaluation (`/api/v1/rules`).
public struct RuleHealth: Sendable {
    public var health = "unknown"
    public var lastError: String?
    public var lastEvaluation: Int64?
    /// Seconds the last evaluation took (wall clock, to the nanosecond: `evaluationTime` in the API).
    public var duration: Double = 0
}

/// Evaluates rule groups and keeps their alerts' state machine (inactive → pending → firing → resolved)
/// with the semantics of Prometheus 2.42's rule manager: the same alerts at the same times, which
/// `promtool test rules` files check (``PromtoolTestRunner``).
///
/// Not thread-safe: one task owns an evaluator (``RuleService`` in `run`, the test runner).
public final class RuleEvaluator {
    /// How long a resolved alert is kept so that notifications can say so (Prometheus' `resolvedRetention`).
    public static let resolvedRetention: Int64 = 15 * 60_000

    public struct GroupState {
        public var group: RuleGroup
        /// The rule file the group came from.
        public var file: String
        public var interval: Int64
        public var lastEvaluation: Int64?
        public var duration: Double = 0
        /// Per rule: its alerts by label set, its health, and (for HostTwin's slower conditions) the last
        /// vector and when it was computed.
        public var alerts: [[Labels: Alert]]
        public var health: [RuleHealth]
        var cached: [(t: Int64, vector: [(labels: Labels, value: Double)])?]
    }

    public private(set) var groups: [GroupState] = []
    /// What conditions read; a running twin sets ``RuleContext/snapshot`` before each evaluation.
    public var context: RuleContext
    public let recorded: RecordedSeries
    public var externalLabels: [String: String]
    public var externalURL: String

    /// `context.engine` should read through `recorded` (``LayeredSource``) so rules see recorded series.
    public init(files: [RuleFile], context: RuleContext, recorded: RecordedSeries, defaultInterval: Int64,
                externalLabels: [String: String] = [:], externalURL: String = "") {
        self.context = context
        self.recorded = recorded
        self.externalLabels = externalLabels
        self.externalURL = externalURL
        load(files, defaultInterval: defaultInterval, at: nil)
    }

    /// Replaces the rules (a reload), keeping the state of alerts whose rule is unchanged — same group,
    /// name, condition, `for:` and labels — so a reload neither re-pends nor re-fires them. Recorded series
    /// of rules no longer present go stale at `at`.
    public func load(_ files: [RuleFile], defaultInterval: Int64, at: Int64?) {
        struct Identity: Hashable { var group: String; var name: String; var condition: String; var holdFor: Int64; var labels: [String] }
        func identity(_ g: String, _ r: Rule) -> Identity {
            Identity(group: g, name: r.name, condition: r.conditionText, holdFor: r.holdFor, labels: r.labels.map { "\($0.name)=\($0.value.source)" })
        }
        var old: [Identity: (alerts: [Labels: Alert], health: RuleHealth)] = [:]
        var oldWriters = Set<String>()
        for g in groups {
            for (i, r) in g.group.rules.enumerated() {
                old[identity(g.group.name, r)] = (g.alerts[i], g.health[i])
                oldWriters.insert(Self.writer(g.group.name, i, r))
            }
        }
        var newWriters = Set<String>()
        groups = files.flatMap { f in f.groups.map { (f.source, $0) } }.map { file, g in
            var s = GroupState(group: g, file: file, interval: g.interval ?? defaultInterval, alerts: [], health: [], cached: Array(repeating: nil, count: g.rules.count))
            for (i, r) in g.rules.enumerated() {
                let kept = old[identity(g.name, r)]
                s.alerts.append(kept?.alerts ?? [:])
                s.health.append(kept?.health ?? RuleHealth())
                newWriters.insert(Self.writer(g.name, i, r))
            }
            return s
        }
        if let at { for w in oldWriters.subtracting(newWriters) { recorded.retire(w, at: at) } }
    }

    /// The key a rule's recorded series are written under (for stale markers).
    static func writer(_ group: String, _ index: Int, _ rule: Rule) -> String { "\(group)\u{0}\(index)\u{0}\(rule.name)" }

    /// When the next group is due: the earliest of each group's last evaluation plus its interval (`.min`
    /// while one has not run yet, `.max` without groups).
    public var nextDue: Int64 {
        groups.map { g in g.lastEvaluation.map { $0 &+ g.interval } ?? .min }.min() ?? .max
    }

    /// The groups whose interval has passed since their last evaluation at `t`.
    public func due(at t: Int64) -> [Int] {
        groups.indices.filter { i in groups[i].lastEvaluation.map { t - $0 >= groups[i].interval } ?? true }
    }

    /// Evaluates every rule of group `index` at `t`, in order, and returns the alerts' state changes.
    @discardableResult
    public func evaluate(group index: Int, at t: Int64) -> [AlertTransition] {
        let clock = ContinuousClock()
        let started = clock.now
        var transitions: [AlertTransition] = []
        let g = groups[index].group
        for (i, rule) in g.rules.enumerated() {
            let ruleStart = clock.now
            do {
                let vector = try conditionVector(group: index, rule: i, at: t)
                switch rule.kind {
                case .record(let name):
                    try record(rule, name, vector, group: g, index: i, at: t)
                case .alert:
                    transitions += try alert(rule, vector, group: index, index: i, at: t)
                }
                groups[index].health[i].health = "ok"
                groups[index].health[i].lastError = nil
            } catch {
                groups[index].health[i].health = "err"
                groups[index].health[i].lastError = "\(error)"
            }
            groups[index].health[i].lastEvaluation = t
            groups[index].health[i].duration = Self.seconds(ruleStart.duration(to: clock.now))
        }
        groups[index].lastEvaluation = t
        groups[index].duration = Self.seconds(started.duration(to: clock.now))
        return transitions
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func conditionVector(group: Int, rule i: Int, at t: Int64) throws -> [(labels: Labels, value: Double)] {
        let rule = groups[group].group.rules[i]
        if case .twin(let c) = rule.condition, c.refresh > 0, let cached = groups[group].cached[i], t - cached.t < c.refresh, t >= cached.t {
            return cached.vector
        }
        let v = try context.vector(rule.condition, at: t)
        if case .twin = rule.condition { groups[group].cached[i] = (t, v) }
        return v
    }

    func record(_ rule: Rule, _ name: String, _ vector: [(labels: Labels, value: Double)], group: RuleGroup, index: Int, at t: Int64) throws {
        var out: [(labels: Labels, value: Double)] = []
        var seen = Set<Labels>()
        for (labels, value) in vector {
            var pairs = labels.pairs.filter { $0.name != Labels.metricName }
            pairs.append(Label(Labels.metricName, name))
            for (n, tmpl) in rule.labels {
                pairs.removeAll { $0.name == n }
                if !tmpl.source.isEmpty { pairs.append(Label(n, tmpl.source)) }
            }
            let l = Labels(pairs)
            guard seen.insert(l).inserted else { throw PromQLError.execution("vector contains metrics with the same labelset after applying rule labels") }
            out.append((l, value))
        }
        if group.limit > 0, out.count > group.limit { throw PromQLError.execution("exceeded limit of \(group.limit) with \(out.count) series") }
        recorded.write(Self.writer(group.name, index, rule), at: t, out)
    }

    func alert(_ rule: Rule, _ vector: [(labels: Labels, value: Double)], group gi: Int, index i: Int, at ts: Int64) throws -> [AlertTransition] {
        let g = groups[gi].group
        var fresh: [Labels: Alert] = [:]
        for (sampleLabels, value) in vector {
            var names: [String: String] = [:]
            for l in sampleLabels.pairs { names[l.name] = l.value }
            let data = AlertTemplate.Data(labels: names, value: value, externalLabels: externalLabels, externalURL: externalURL)
            var pairs = sampleLabels.pairs.filter { $0.name != Labels.metricName }
            for (n, tmpl) in rule.labels {
                pairs.removeAll { $0.name == n }
                let v = tmpl.expand(data)
                if !v.isEmpty { pairs.append(Label(n, v)) }
            }
            pairs.removeAll { $0.name == "alertname" }
            pairs.append(Label("alertname", rule.name))
            let labels = Labels(pairs)
            let annotations = Labels(rule.annotations.map { Label($0.name, $0.value.expand(data)) })
            guard fresh[labels] == nil else {
                throw PromQLError.execution("vector contains metrics with the same labelset after applying alert labels")
            }
            fresh[labels] = Alert(group: g.name, rule: rule.name, labels: labels, annotations: annotations, state: .pending,
                                  activeAt: ts, value: value)
        }
        // Taken out of `groups` while it changes, so that it is changed in place rather than copied whole
        // (it holds every resolved alert for 15 minutes: thousands after a churn of short-lived listeners).
        var active: [Labels: Alert] = [:]
        swap(&active, &groups[gi].alerts[i])
        defer { groups[gi].alerts[i] = active }
        var transitions: [AlertTransition] = []
        for (l, a) in fresh {
            if var existing = active[l], existing.state != .inactive {
                existing.value = a.value
                existing.annotations = a.annotations
                active[l] = existing
                continue
            }
            active[l] = a
            transitions.append(AlertTransition(kind: .pending, time: ts, alert: a))
        }
        var activePending = 0
        var series: [(labels: Labels, value: Double)] = []
        var dropped: [Labels] = []
        // Walked by index and changed through `values`, which keeps the table as it is (no copy, no rehash).
        var index = active.startIndex
        while index != active.endIndex {
            defer { index = active.index(after: index) }
            let l = active.keys[index]
            var a = active.values[index]
            if fresh[l] == nil {
                var keepFiring = false
                if a.state == .firing, rule.keepFiringFor > 0 {
                    if a.keepFiringSince == nil { a.keepFiringSince = ts }
                    if ts - a.keepFiringSince! < rule.keepFiringFor { keepFiring = true }
                }
                let drop = a.state == .pending || (a.resolvedAt.map { ts - $0 > Self.resolvedRetention } ?? false)
                if drop { dropped.append(l) }
                if a.state != .inactive, !keepFiring {
                    let was = a.state
                    a.state = .inactive
                    a.resolvedAt = ts
                    transitions.append(AlertTransition(kind: was == .firing ? .resolved : .cleared, time: ts, alert: a))
                    if !drop { active.values[index] = a }
                }
                if !keepFiring { continue }
            } else {
                a.keepFiringSince = nil
            }
            activePending += 1
            if a.state == .pending, ts - a.activeAt >= rule.holdFor {
                a.state = .firing
                a.firedAt = ts
                transitions.append(AlertTransition(kind: .firing, time: ts, alert: a))
            }
            active.values[index] = a
            var alertLabels = a.labels.pairs
            alertLabels.append(Label(Labels.metricName, "ALERTS"))
            alertLabels.append(Label("alertstate", a.state.rawValue))
            series.append((Labels(alertLabels), 1))
        }
        for l in dropped { active.removeValue(forKey: l) }
        if g.limit > 0, activePending > g.limit {
            active = [:]
            throw PromQLError.execution("exceeded limit of \(g.limit) with \(activePending) alerts")
        }
        recorded.write(Self.writer(g.name, i, rule), at: ts, series)
        return transitions
    }

    /// Every alert held, pending, firing or recently resolved, by group then rule.
    public var alerts: [Alert] {
        groups.flatMap { g in g.alerts.flatMap { $0.values.sorted { Labels.promLess($0.labels, $1.labels) } } }
    }

    /// Puts back alerts restored from the store (after a restart), for the rule of the same group and name.
    public func restore(_ restored: [Alert]) {
        for a in restored {
            guard let gi = groups.firstIndex(where: { $0.group.name == a.group }),
                  let ri = groups[gi].group.rules.firstIndex(where: { $0.isAlert && $0.name == a.rule }) else { continue }
            groups[gi].alerts[ri][a.labels] = a
        }
    }
}
