import Foundation
import Synchronization
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage
import Yams

/// HostTwin's conditions beyond PromQL, written in a rule in place of `expr:`. Each yields an instant
/// vector like an expression does, so `for:`, labels, annotations and the alert states work the same:
///
/// ```yaml
/// forecast: {expr: 'node_filesystem_avail_bytes{fstype!="tmpfs"}', below: 0, within: 12h, confidence: 80%}
/// anomaly: {host_rate_above: 5%}
/// state: {kind: listening_ports, match: {port: 22}, absent: true}    # nothing listens on 22
/// state: {kind: listening_ports, new: true}                          # a port not there at the baseline
/// state: {kind: packages, changed_within: 10m}                       # installed, upgraded or removed
/// restart_loop: {within: 10m}                                        # a process restarting in a loop
/// silent: {after: 1m}                                                # a hub's host stopped reporting
/// compliance: {check: unlisted_listener, allow: [22, 443]}           # the compliance pack's checks
/// ```
public enum TwinCondition: Sendable, CustomStringConvertible {
    /// A series' forecast crossing `threshold` within `within` ms at `confidence` (0.5: the expected path).
    /// Element value: seconds until the crossing.
    case forecast(expr: Expr, exprText: String, threshold: Double, below: Bool, within: Int64, confidence: Double, history: Int64)
    /// The host anomaly rate (the share of live series whose detector alerted in the last 10 minutes) at
    /// or above `rate`. Element value: the rate.
    case anomaly(rate: Double)
    /// Entities of `kind` whose attributes equal `match` (text comparison), in one of three modes.
    case state(kind: EntityKind, match: [String: String], mode: StateMode, labelsFrom: [String])
    /// Processes restarting in a loop within the last `within` ms (the anomaly scan's detector: the same
    /// command restarted by the same owner, five short runs in a row). Element value: 1.
    case restartLoop(within: Int64)
    /// A hub's hosts whose last tick is older than `after` ms. Element value: seconds since the last tick.
    case silent(after: Int64)
    /// One of the compliance pack's checks. Element value: 1 per finding.
    case compliance(ComplianceCheck)

    public enum StateMode: Sendable, Equatable {
        /// One element per host where nothing matches.
        case absent
        /// One element per matching entity not present at the baseline (the store's first run, plus a
        /// minute for the collectors' first ticks).
        case new
        /// One element per matching entity that appeared, changed or disappeared in the last `window` ms.
        case changedWithin(Int64)
        /// One element per matching entity.
        case present
    }

    /// How often the condition is worth re-evaluating (ms): its inputs move at that pace; in between the
    /// evaluator reuses the last vector.
    public var refresh: Int64 {
        switch self {
        case .forecast: return 300_000
        // A scan of every series from its saved detector state (the minutes since the anomaly monitor's last
        // pass, and the alerts the state recorded): as often as the monitor saves them.
        case .anomaly: return 300_000
        case .state, .silent, .compliance: return 0
        case .restartLoop: return 60_000
        }
    }

    public var description: String {
        switch self {
        case let .forecast(_, text, threshold, below, within, confidence, _):
            return "forecast: \(text) \(below ? "below" : "above") \(GoFormat.shortest(threshold)) within \(PromQLPrinter.duration(within)) at \(GoFormat.shortest(confidence * 100))% confidence"
        case .anomaly(let rate): return "anomaly: host rate above \(GoFormat.shortest(rate * 100))%"
        case let .state(kind, match, mode, _):
            let m = match.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let what: String
            switch mode {
            case .absent: what = "absent"
            case .new: what = "new"
            case .changedWithin(let w): what = "changed within \(PromQLPrinter.duration(w))"
            case .present: what = "present"
            }
            return "state: \(kind.rawValue){\(m)} \(what)"
        case .restartLoop(let w): return "restart_loop: within \(PromQLPrinter.duration(w))"
        case .silent(let a): return "silent: after \(PromQLPrinter.duration(a))"
        case .compliance(let c): return c.description
        }
    }

    static func read(_ key: String, _ node: Node, _ tree: inout ConfigTree) throws -> TwinCondition {
        switch key {
        case "forecast":
            let fields = try tree.mapping(node, "forecast", allowed: ["expr", "below", "above", "within", "confidence", "history"])
            var expr: (Expr, String)?, threshold: (Double, Bool)?, within: Int64?, confidence = 0.8, history: Int64?
            for (k, kn, v) in fields {
                switch k {
                case "expr":
                    let text = try tree.string(v, "forecast expr")
                    do {
                        let e = try PromQLParser.parse(text)
                        guard e.type == .vector else { throw tree.error(at: v, "forecast expr must give an instant vector") }
                        expr = (e, text)
                    } catch let e as ConfigError { throw e } catch { throw tree.error(at: v, "forecast: bad PromQL: \(error)") }
                case "below", "above":
                    guard threshold == nil else { throw tree.error(at: kn, "forecast: give 'below' or 'above', not both") }
                    threshold = (try tree.number(v, "forecast \(k)"), k == "below")
                case "within": within = try tree.duration(v, "forecast within")
                case "history": history = try tree.duration(v, "forecast history")
                default:
                    confidence = try tree.number(v, "forecast confidence")
                    guard confidence >= 0.5, confidence < 1 else { throw tree.error(at: v, "forecast confidence must be from 50% up to (not including) 100%") }
                }
            }
            guard let expr else { throw tree.error(at: node, "forecast needs 'expr' (the series to forecast)") }
            guard let threshold else { throw tree.error(at: node, "forecast needs 'below' or 'above' (the threshold)") }
            guard let within, within > 0 else { throw tree.error(at: node, "forecast needs 'within' (a horizon such as 12h)") }
            let h = history ?? min(max(4 * within, 6 * 3_600_000), 7 * 86_400_000)
            return .forecast(expr: expr.0, exprText: expr.1, threshold: threshold.0, below: threshold.1, within: within, confidence: confidence, history: h)
        case "anomaly":
            let fields = try tree.mapping(node, "anomaly", allowed: ["host_rate_above"])
            guard let (_, _, v) = fields.first else { throw tree.error(at: node, "anomaly needs 'host_rate_above' (such as 5%)") }
            let rate = try tree.number(v, "host_rate_above")
            guard rate > 0, rate <= 1 else { throw tree.error(at: v, "host_rate_above must be above 0% and at most 100%") }
            return .anomaly(rate: rate)
        case "compliance":
            let fields = try tree.mapping(node, "compliance", allowed: ["check", "allow"])
            var check: String?, allow: [String] = []
            for (k, _, v) in fields {
                if k == "check" {
                    check = try tree.string(v, "compliance check")
                    guard ComplianceCheck.names.contains(check!) else {
                        throw tree.error(at: v, "compliance: unknown check '\(check!)' (one of \(ComplianceCheck.names.joined(separator: ", ")))")
                    }
                } else {
                    allow = try tree.sequence(v, "allow").map { try tree.string($0, "allow") }
                }
            }
            switch check {
            case "ssh_root_login": return .compliance(.sshRootLogin)
            case "ssh_password_authentication": return .compliance(.sshPasswordAuthentication)
            case "world_writable": return .compliance(.worldWritable)
            case "security_updates": return .compliance(.securityUpdates)
            case "unexpected_suid":
                guard allow.allSatisfy({ $0.hasPrefix("/") }) else { throw tree.error(at: node, "compliance unexpected_suid: allow lists absolute paths") }
                return .compliance(.unexpectedSUID(allowed: allow))
            case "unlisted_listener":
                let ports = allow.compactMap { Int64($0) }.filter { (1...65535).contains($0) }
                guard ports.count == allow.count else { throw tree.error(at: node, "compliance unlisted_listener: allow lists port numbers (1-65535)") }
                return .compliance(.unlistedListener(allowedPorts: ports))
            default: throw tree.error(at: node, "compliance needs 'check' (one of \(ComplianceCheck.names.joined(separator: ", ")))")
            }
        case "restart_loop", "silent":
            let field = key == "silent" ? "after" : "within"
            let fields = try tree.mapping(node, key, allowed: [field])
            guard let (_, _, v) = fields.first else { throw tree.error(at: node, "\(key) needs '\(field)' (a duration such as 1m)") }
            let d = try tree.duration(v, "\(key) \(field)")
            guard d > 0 else { throw tree.error(at: v, "\(key) \(field) must be more than 0") }
            return key == "silent" ? .silent(after: d) : .restartLoop(within: d)
        default:
            let fields = try tree.mapping(node, "state", allowed: ["kind", "match", "absent", "new", "changed_within", "labels_from"])
            var kind: EntityKind?, match: [String: String] = [:], modes: [StateMode] = [], labelsFrom: [String] = []
            for (k, _, v) in fields {
                switch k {
                case "kind":
                    let text = try tree.string(v, "state kind")
                    guard let kd = EntityKind(rawValue: text) else {
                        throw tree.error(at: v, "state: unknown kind '\(text)' (one of \(EntityKind.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    kind = kd
                case "match": for (name, _, value, _) in try tree.stringMap(v, "match") { match[name] = value }
                case "absent": if try tree.bool(v, "absent") { modes.append(.absent) }
                case "new": if try tree.bool(v, "new") { modes.append(.new) }
                case "changed_within": modes.append(.changedWithin(try tree.duration(v, "changed_within")))
                default:
                    for n in try tree.sequence(v, "labels_from") {
                        let name = try tree.string(n, "labels_from")
                        guard RuleFileReader.isLabelName(name) else { throw tree.error(at: n, "labels_from: '\(name)' is not a label name") }
                        labelsFrom.append(name)
                    }
                }
            }
            guard let kind else { throw tree.error(at: node, "state needs 'kind' (such as listening_ports)") }
            guard modes.count <= 1 else { throw tree.error(at: node, "state: give one of absent, new, changed_within") }
            return .state(kind: kind, match: match, mode: modes.first ?? .present, labelsFrom: labelsFrom)
        }
    }
}

/// The host's entities as of one tick, kept by the rule service from the ticks it is handed, so state
/// conditions at that tick read memory instead of the store.
public struct StateSnapshot: Sendable {
    public var time: Int64
    /// The lists the collectors handed over, as they were (a kind becomes versions only when a condition reads it).
    public var entities: [EntityKind: [Entity]]
    /// Whether a kind missing from `entities` has none (every collector has run since the snapshot began);
    /// until then a missing kind is read from the store.
    public var complete: Bool
    public init(time: Int64, entities: [EntityKind: [Entity]], complete: Bool) {
        self.time = time
        self.entities = entities
        self.complete = complete
    }
}

/// What a rule's condition is evaluated against: the query engine, and the store for HostTwin's own
/// conditions (nil where there is none, as in `rules test`).
public struct RuleContext: Sendable {
    public var engine: PromQLEngine
    public var store: TwinStore?
    /// The entities at the evaluation's time, when the caller has them (a running twin's latest tick).
    public var snapshot: StateSnapshot?
    /// Entity keys present at the baseline (`new: true`), by kind: the baseline never moves, so it is read once.
    let baselines = BaselineCache()
    /// The processes' runs of `restart_loop` conditions, followed as their window moves.
    let processRuns = ProcessRunsWatch()
    /// What each state condition kept of the snapshot's lists, until a collector hands a list over again.
    let snapshotFilters = SnapshotFilters()
    public init(engine: PromQLEngine, store: TwinStore?) {
        self.engine = engine
        self.store = store
    }

    /// The entities of `kinds` at `t` that `keep` accepts (by key and attributes): from the snapshot when it
    /// is of `t` and holds them, else the store. A snapshot's entities are filtered before they are copied
    /// into versions (a host's files are a thousand, the set-user-ID ones among them a dozen). With a
    /// `condition` (whose `keep` gives the same answer for the same entity at every evaluation), a list the
    /// collector has not handed over again since the last evaluation is not filtered again.
    func state(_ store: TwinStore, at t: Int64, kinds: [EntityKind], condition: String? = nil,
               where keep: (String, [String: AttributeValue]) -> Bool = { _, _ in true }) throws -> [EntityVersion] {
        if let snap = snapshot, snap.time == t, snap.complete || kinds.allSatisfy({ snap.entities[$0] != nil }) {
            return kinds.flatMap { k in
                let list = snap.entities[k] ?? []
                let kept = condition.map { snapshotFilters.filter(list, for: "\($0) \(k.rawValue)") { keep($0.key, $0.attributes) } }
                    ?? list.filter { keep($0.key, $0.attributes) }
                return kept.map { EntityVersion(kind: k, key: $0.key, attributes: $0.attributes, validFrom: t, validTo: nil) }
            }
        }
        return try store.state(at: t, kinds: kinds).filter { keep($0.key, $0.attributes) }
    }

    /// The condition's instant vector at `t`.
    func vector(_ c: Rule.Condition, at t: Int64) throws -> [(labels: Labels, value: Double)] {
        switch c {
        case .promql(let e):
            switch try engine.instant(e, at: t) {
            case .vector(_, let v): return v
            case .scalar(_, let v): return [(Labels.empty, v)]
            default: throw PromQLError.execution("rule result is not a vector or scalar")
            }
        case .twin(let tc):
            return try twin(tc, at: t)
        }
    }

    func twin(_ c: TwinCondition, at t: Int64) throws -> [(labels: Labels, value: Double)] {
        switch c {
        case let .forecast(expr, _, threshold, below, within, confidence, history):
            let z = Self.normalQuantile(confidence)
            var out: [(Labels, Double)] = []
            for f in try QueryForecaster.forecast(engine: engine, expr: expr, now: t, history: history, horizon: within) {
                for (i, p) in f.points.enumerated() {
                    // The two-sided 80 % interval's half-width is 1.2816 σ.
                    let sigma = max(p.hi80 - p.mean, 0) / 1.2816
                    let crossed = below ? p.mean + z * sigma <= threshold : p.mean - z * sigma >= threshold
                    guard crossed else { continue }
                    let at = f.last.t + f.step * Int64(i + 1)
                    out.append((f.labels, Double(max(at - t, 0)) / 1000))
                    break
                }
            }
            return out
        case .anomaly(let rate):
            guard let store else { throw PromQLError.execution("anomaly conditions need the twin's store") }
            let window: Int64 = 10 * 60_000
            let report = try AnomalyScan.run(store: store, to: t, window: window, history: 6 * 3_600_000, warnings: false)
            var counts: [String: Int] = [:]
            let since = TwinTime.rfc3339(t - window)
            for a in report.alerts where a.time >= since { counts[a.host ?? "", default: 0] += 1 }
            var out: [(Labels, Double)] = []
            for (host, live) in report.liveSeriesByHost where live > 0 {
                let r = Double(counts[host] ?? 0) / Double(live)
                if r >= rate { out.append((host.isEmpty ? .empty : Labels(["host": host]), r)) }
            }
            return out
        case .restartLoop(let within):
            guard let store else { throw PromQLError.execution("restart_loop conditions need the twin's store") }
            return try processRuns.restartLoops(store, within: within, at: t).map { w in
                // The program's name, not its command line (arguments may hold secrets).
                let program = w.subject.split(separator: " ").first.map { String($0.split(separator: "/").last ?? $0) } ?? w.subject
                var l = [Label("program", program)]
                if let host = w.host { l.append(Label("host", host)) }
                return (Labels(l), 1)
            }
        case .silent(let after):
            guard let store else { throw PromQLError.execution("silent conditions need the twin's store") }
            return try store.remoteCursors().compactMap { c in
                let since = t - (c.lastTime ?? .min / 2)
                return since > after ? (Labels(["host": c.host]), Double(since) / 1000) : nil
            }
        case .compliance(let check):
            guard let store else { throw PromQLError.execution("compliance conditions need the twin's store") }
            return check.findings(try state(store, at: t, kinds: check.kinds))
        case let .state(kind, match, mode, labelsFrom):
            guard let store else { throw PromQLError.execution("state conditions need the twin's store") }
            func matches(_ a: [String: AttributeValue]) -> Bool { match.allSatisfy { a[$0.key]?.description == $0.value } }
            func labels(_ v: EntityVersion, change: String? = nil) -> Labels {
                var l = [Label("kind", kind.rawValue), Label("key", v.key)]
                for name in (Array(match.keys) + labelsFrom) where name != "kind" && name != "key" {
                    if let value = v.attributes[name], value != .null { l.append(Label(name, value.description)) }
                }
                if let host = v.attributes["host"], !match.keys.contains("host"), !labelsFrom.contains("host") { l.append(Label("host", host.description)) }
                if let change { l.append(Label("change", change)) }
                var seen = Set<String>()
                return Labels(l.filter { seen.insert($0.name).inserted })
            }
            switch mode {
            case .present:
                return try state(store, at: t, kinds: [kind], condition: c.description) { matches($1) }.map { (labels($0), 1) }
            case .absent:
                let now = try state(store, at: t, kinds: [kind, .host])
                let hosts = Set(now.filter { $0.kind == .host }.map { $0.attributes["host"]?.description ?? "" })
                let found = Set(now.filter { $0.kind == kind && matches($0.attributes) }.map { $0.attributes["host"]?.description ?? "" })
                return hosts.subtracting(found).sorted().map { host in
                    var l = [Label("kind", kind.rawValue)] + match.map { Label($0.key, $0.value) }
                    if !host.isEmpty { l.append(Label("host", host)) }
                    return (Labels(l), 1)
                }
            case .new:
                guard let first = try baselines.firstRun(store) else { return [] }
                let baseline = first + 60_000
                guard t > baseline else { return [] }
                let before = try baselines.keys(kind, at: baseline) { Set(try store.state(at: baseline, kinds: [kind]).map(\.key)) }
                return try state(store, at: t, kinds: [kind], condition: c.description) { matches($1) && !before.contains($0) }.map { (labels($0), 1) }
            case .changedWithin(let window):
                let from = t - window
                var out: [String: (Labels, Double)] = [:]
                let started = try store.versionsStarting(from: from, to: t, kinds: [kind])
                let ended = try store.versionsEnding(from: from, to: t).filter { $0.kind == kind }
                let startKeys = Set(started.map(\.key)), endKeys = Set(ended.map(\.key))
                for v in started where matches(v.attributes) {
                    out[v.key] = (labels(v, change: endKeys.contains(v.key) ? "changed" : "appeared"), 1)
                }
                for v in ended where !startKeys.contains(v.key) && matches(v.attributes) {
                    out[v.key] = (labels(v, change: "disappeared"), 1)
                }
                return out.values.sorted { Labels.promLess($0.0, $1.0) }
            }
        }
    }

    /// The standard normal quantile (Acklam's rational approximation; |error| < 1.2e-9).
    static func normalQuantile(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let lo = 0.02425
        if p < lo {
            let q = (-2 * Foundation.log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - lo { return -normalQuantile(1 - p) }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}

/// The processes' runs of the last `within` of each `restart_loop` window, kept between looks: each look
/// reads only the versions that started or ended since the one before (less a margin for ticks stored late),
/// where reading the whole window once a minute decoded every version block packed in it. The window is
/// read whole again once per `within` (a hub's hosts push late) and whenever the time goes back.
final class ProcessRunsWatch: Sendable {
    private struct Followed { var runs: ProcessRuns; var readTo: Int64; var readWhole: Int64 }
    private let followed = Mutex<[Int64: Followed]>([:])
    /// How far before the last read each read starts again.
    static let margin: Int64 = 30_000

    func restartLoops(_ store: TwinStore, within: Int64, at t: Int64) throws -> [AnomalyReport.Warning] {
        let held = followed.withLock { $0[within] }
        var f: Followed
        if let held, t >= held.readTo, t - held.readWhole < within {
            f = held
            let from = max(held.readTo - Self.margin, t - within)
            f.runs.started(try store.versionsStarting(from: from, to: t, kinds: [.processes], attributes: ProcessRuns.attributes))
            f.runs.ended(try store.versionsEnding(from: from, to: t, kinds: [.processes], attributes: ["host"]))
            f.runs.forget(before: t - within)
            f.readTo = t
        } else {
            var runs = ProcessRuns()
            runs.started(try store.versionsStarting(from: t - within, to: t, kinds: [.processes], attributes: ProcessRuns.attributes))
            f = Followed(runs: runs, readTo: t, readWhole: t)
        }
        followed.withLock { $0[within] = f }
        return f.runs.restartLoops()
    }
}

/// The entities each state condition kept of a snapshot's list, with the list they came from. A collector
/// hands its list over only when something in it changed, so the same array (the same storage, which the
/// cache holds alive, so no other list can have it) means the same entities: a host's thousand files are
/// not matched again every 5 s for the dozen set-user-ID ones (0.09 ms of CPU a second).
final class SnapshotFilters: Sendable {
    private let kept = Mutex<[String: (list: [Entity], kept: [Entity])]>([:])

    /// `list` filtered by `keep`, which must give the same answer every time for condition `key`.
    func filter(_ list: [Entity], for key: String, _ keep: (Entity) -> Bool) -> [Entity] {
        func storage(_ a: [Entity]) -> UnsafeRawPointer? { a.withUnsafeBufferPointer { $0.baseAddress.map(UnsafeRawPointer.init) } }
        if let hit = kept.withLock({ $0[key] }), hit.list.count == list.count, storage(hit.list) == storage(list) { return hit.kept }
        let out = list.filter(keep)
        kept.withLock { $0[key] = (list, out) }
        return out
    }
}

/// Entity keys at a baseline time, by kind, read once.
final class BaselineCache: Sendable {
    private let held = Mutex<[EntityKind: (at: Int64, keys: Set<String>)]>([:])
    private let first = Mutex<Int64?>(nil)

    /// When the store's first run started (it never changes once there is one).
    func firstRun(_ store: TwinStore) throws -> Int64? {
        if let f = first.withLock({ $0 }) { return f }
        let f = try store.runs().first?.started
        first.withLock { $0 = f }
        return f
    }

    func keys(_ kind: EntityKind, at t: Int64, read: () throws -> Set<String>) throws -> Set<String> {
        if let k = held.withLock({ $0[kind] }), k.at == t { return k.keys }
        let keys = try read()
        held.withLock { $0[kind] = (t, keys) }
        return keys
    }
}
