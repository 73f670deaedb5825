import Foundation
import Synchronization
import TwinCore
import TwinQuery
import TwinStorage

/// Where a running twin's rules come from: the built-in set and rule files, read again on a reload.
public struct RuleSources: Sendable {
    public var files: [String]
    public var includeDefaults: Bool
    /// The compliance pack (off by default).
    public var includeCompliance: Bool
    /// The actions rules may name (the alerting configuration's allow-list); nil: not checked.
    public var allowedActions: Set<String>?
    public init(files: [String], includeDefaults: Bool, includeCompliance: Bool = false, allowedActions: Set<String>? = nil) {
        self.files = files
        self.includeDefaults = includeDefaults
        self.includeCompliance = includeCompliance
        self.allowedActions = allowedActions
    }

    /// Reads every source; throws every file's errors together.
    public func load() throws -> [RuleFile] {
        var out: [RuleFile] = []
        var errors: [ConfigError] = []
        if includeDefaults { out.append(try RuleFile.defaults()) }
        if includeCompliance { out.append(try RuleFile.compliance()) }
        for path in files {
            do { out.append(try RuleFile.load(path: path)) } catch let e as RuleFileErrors { errors += e.errors }
        }
        if !errors.isEmpty { throw RuleFileErrors(errors: errors) }
        // Group names are unique across files as within one (alerts are kept across reloads by group).
        var seen: [String: String] = [:]
        for f in out {
            for g in f.groups {
                if let other = seen[g.name] {
                    errors.append(ConfigError(file: f.source, line: g.line, column: 0, message: "group '\(g.name)' is also in \(other); group names must be unique"))
                }
                seen[g.name] = f.source
            }
        }
        if let allowed = allowedActions {
            for f in out {
                for r in f.rules {
                    for a in r.actions where !allowed.contains(a) {
                        errors.append(ConfigError(file: f.source, line: r.line, column: 0, message: "alert '\(r.name)': action '\(a)' is not in the allow-list of the alerting configuration (--alerting FILE: actions)"))
                    }
                }
            }
        }
        if !errors.isEmpty { throw RuleFileErrors(errors: errors) }
        return out
    }
}

/// The rules of a running twin (`run`, `serve` at a hub): evaluated at ticks, their alerts' changes stored
/// as events, their recorded series held for queries, reloadable without losing alert state. Thread-safe:
/// the evaluation, a reload and the API's snapshots take turns.
public final class RuleRunner: Sendable {
    public let store: TwinStore
    public let sources: RuleSources
    public let recorded: RecordedSeries
    /// The last minutes of the series the rules read; a running twin feeds it each committed tick.
    public let recent: RecentSamples
    public let defaultInterval: Int64
    private let evaluator: Mutex<RuleEvaluator>
    /// When the next group is due, readable without waiting for an evaluation under way.
    private let nextDue = Atomic<Int64>(.min)
    /// The last reload's outcome: when, and its error if the new rules were refused.
    private let lastReload = Mutex<(time: Int64, error: String?)?>(nil)

    /// Loads the rules and puts back the alerts the store says were pending or firing at `now`.
    public init(store: TwinStore, sources: RuleSources, defaultInterval: Int64 = 5_000, now: Int64 = TwinTime.nowMillis()) throws {
        self.store = store
        self.sources = sources
        self.defaultInterval = defaultInterval
        let recorded = RecordedSeries(keep: 3_600_000)
        self.recorded = recorded
        let recent = RecentSamples()
        self.recent = recent
        let engine = PromQLEngine(source: LayeredSource(base: StoreSampleSource(store: store, scrapeLabels: ScrapeLabels(), recent: recent), recorded: recorded))
        var limited = engine
        limited.timeout = 10_000
        let ev = RuleEvaluator(files: try sources.load(), context: RuleContext(engine: limited, store: store), recorded: recorded, defaultInterval: defaultInterval)
        ev.restore(try store.activeAlerts(at: now).map(Alert.init(record:)))
        evaluator = Mutex(ev)
    }

    /// Evaluates the groups due at `t` and stores the alerts' state changes; returns them. `snapshot` (the
    /// host's entities at `t`, when the caller has them) spares state conditions a read of the store.
    /// `cost` is told each evaluated group's name and the seconds its evaluation took.
    @discardableResult
    public func evaluate(at t: Int64, snapshot: StateSnapshot? = nil, cost: ((String, Double) -> Void)? = nil) throws -> [AlertTransition] {
        let (transitions, costs) = evaluator.withLock { ev -> ([AlertTransition], [(String, Double)]) in
            ev.context.snapshot = snapshot
            defer { nextDue.store(ev.nextDue, ordering: .relaxed) }
            var transitions: [AlertTransition] = [], costs: [(String, Double)] = []
            for i in ev.due(at: t) {
                transitions += ev.evaluate(group: i, at: t)
                costs.append((ev.groups[i].group.name, ev.groups[i].duration))
            }
            return (transitions, costs)
        }
        if let cost { for (group, seconds) in costs { cost(group, seconds) } }
        // An alert without `for` is pending and firing in the same evaluation: its firing record (with
        // `activeAt`) says both, and a host that opens short-lived ports would store a third more for nothing.
        // An alert that cleared before it fired is forgotten: its pending record is withdrawn, and no
        // `cleared` record is written (the log still says so).
        let firedAtOnce = Set(transitions.filter { $0.kind == .firing && $0.alert.activeAt == $0.time }.map(\.alert.labels))
        var records: [AlertRecord] = []
        var withdrawn: [(key: String, pendingAt: Int64)] = []
        for tr in transitions {
            switch tr.kind {
            case .pending where firedAtOnce.contains(tr.alert.labels): continue
            case .cleared: withdrawn.append((Self.record(tr).key, tr.alert.activeAt))
            default: records.append(Self.record(tr))
            }
        }
        try store.recordAlerts(records, withdrawing: withdrawn)
        return transitions
    }

    /// Reads the rule sources again. On success the new rules replace the old, alerts of unchanged rules
    /// keep their state; on an error the old rules stay and the errors are thrown (and shown by the API).
    public func reload(at t: Int64 = TwinTime.nowMillis()) throws -> (groups: Int, rules: Int) {
        do {
            let files = try sources.load()
            evaluator.withLock { ev in
                ev.load(files, defaultInterval: defaultInterval, at: t)
                nextDue.store(ev.nextDue, ordering: .relaxed)
            }
            lastReload.withLock { $0 = (t, nil) }
            return (files.reduce(0) { $0 + $1.groups.count }, files.reduce(0) { $0 + $1.rules.count })
        } catch {
            lastReload.withLock { $0 = (t, "\(error)") }
            throw error
        }
    }

    /// Whether a group is due at `t` (without waiting for an evaluation under way).
    public func isDue(at t: Int64) -> Bool { t >= nextDue.load(ordering: .relaxed) }

    /// The groups, rules, their health and alerts, as now.
    public func snapshot() -> [RuleEvaluator.GroupState] { evaluator.withLock { $0.groups } }

    /// Every alert held (pending, firing, or resolved within the last 15 minutes).
    public func alerts() -> [Alert] { evaluator.withLock { $0.alerts } }

    /// The actions the rule of `alert` names.
    public func actions(of alert: Alert) -> [String] {
        evaluator.withLock { ev in
            ev.groups.first { $0.group.name == alert.group }?.group.rules.first { $0.isAlert && $0.name == alert.rule }?.actions ?? []
        }
    }

    /// When the rules were last reloaded and whether that failed.
    public var reloadStatus: (time: Int64, error: String?)? { lastReload.withLock { $0 } }

    static func record(_ t: AlertTransition) -> AlertRecord {
        AlertRecord(time: t.time, state: t.kind.rawValue, group: t.alert.group, rule: t.alert.rule,
                    labels: Dictionary(uniqueKeysWithValues: t.alert.labels.pairs.map { ($0.name, $0.value) }),
                    annotations: Dictionary(uniqueKeysWithValues: t.alert.annotations.pairs.map { ($0.name, $0.value) }),
                    value: t.alert.value, activeAt: t.alert.activeAt, firedAt: t.alert.firedAt)
    }
}

extension Alert {
    /// The alert a stored change left behind (pending or firing; anything else reads as pending).
    public init(record r: AlertRecord) {
        self.init(group: r.group, rule: r.rule, labels: Labels(dictionary: r.labels), annotations: Labels(dictionary: r.annotations),
                  state: r.state == "firing" ? .firing : .pending, activeAt: r.activeAt, firedAt: r.firedAt, value: r.value)
    }
}
