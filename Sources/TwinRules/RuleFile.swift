import Foundation
import TwinCore
import TwinQuery
import Yams

/// A rule file: Prometheus' format (`groups:` of `rules:` with `alert`/`record`, `expr`, `for`,
/// `keep_firing_for`, `labels`, `annotations`), so existing node_exporter alert rules load unchanged, plus
/// HostTwin's own conditions in place of `expr` (``Rule/Condition``). docs/RULES.md describes it.
public struct RuleFile: Sendable {
    /// Where the rules came from (a path, or `<default>` for the built-in set).
    public var source: String
    public var groups: [RuleGroup]

    /// Reads and checks a rule file. Every problem found is reported (``RuleFileErrors``), each naming its line.
    public static func load(path: String) throws -> RuleFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuleFileErrors(errors: [ConfigError(file: path, line: 0, column: 0, message: "cannot read the file (missing or not readable)")])
        }
        guard data.count <= ConfigTree.maxBytes else {
            throw RuleFileErrors(errors: [ConfigError(file: path, line: 0, column: 0, message: "file larger than \(ConfigTree.maxBytes >> 20) MiB")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RuleFileErrors(errors: [ConfigError(file: path, line: 0, column: 0, message: "not UTF-8 text")])
        }
        return try parse(text, source: path)
    }

    /// Parses and checks rule-file text.
    public static func parse(_ text: String, source: String) throws -> RuleFile {
        var reader = RuleFileReader(tree: ConfigTree(file: source))
        let file = try reader.read(text)
        if !reader.errors.isEmpty { throw RuleFileErrors(errors: reader.errors) }
        return file
    }

    /// Every rule of every group, in file order.
    public var rules: [Rule] { groups.flatMap(\.rules) }
}

/// Everything wrong with a rule file.
public struct RuleFileErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Rules evaluated together, in order, at one interval.
public struct RuleGroup: Sendable {
    public var name: String
    /// How often the group is evaluated (ms); nil: the evaluator's default.
    public var interval: Int64?
    /// At most this many alerts or recorded series per rule (0: no limit), as Prometheus' `limit`.
    public var limit: Int
    public var rules: [Rule]
    public var line: Int
}

/// One alerting or recording rule.
public struct Rule: Sendable {
    public enum Kind: Sendable, Equatable {
        /// An alerting rule and its name (the `alertname` label).
        case alert(String)
        /// A recording rule and the metric name it records.
        case record(String)
    }

    /// What a rule evaluates to at a time: an instant vector, each element of which is an alert (or a
    /// recorded sample).
    public enum Condition: Sendable {
        /// A PromQL expression (`expr:`).
        case promql(Expr)
        /// HostTwin's own conditions (`forecast:`, `anomaly:`, `state:`): see ``TwinCondition``.
        case twin(TwinCondition)
    }

    public var kind: Kind
    public var condition: Condition
    /// The condition as written (PromQL text, or HostTwin's condition in YAML flow form).
    public var conditionText: String
    /// How long the condition must hold before the alert fires (ms).
    public var holdFor: Int64
    /// How long a firing alert keeps firing once the condition stops holding (ms).
    public var keepFiringFor: Int64
    /// Labels added to each alert or recorded series (values are templates for alerts), sorted by name.
    public var labels: [(name: String, value: AlertTemplate)]
    /// Annotations of each alert (templates), sorted by name.
    public var annotations: [(name: String, value: AlertTemplate)]
    /// Names of the actions (in the run configuration's allow-list) to run when the alert fires.
    public var actions: [String]
    public var line: Int

    public var name: String {
        switch kind {
        case .alert(let n), .record(let n): return n
        }
    }
    public var isAlert: Bool { if case .alert = kind { return true } else { return false } }
}

/// Reads a rule file's tree, collecting every error instead of stopping at the first.
struct RuleFileReader {
    var tree: ConfigTree
    var errors: [ConfigError] = []

    /// The most errors collected before reading stops.
    static let maxErrors = 100

    /// Runs `body`, collecting its error; stops the whole read (throws) once the tree's node budget is
    /// spent or ``maxErrors`` are collected, so a hostile file costs bounded time and memory.
    mutating func attempt<T>(_ body: (inout ConfigTree) throws -> T) throws -> T? {
        do { return try body(&tree) } catch let e as ConfigError {
            errors.append(e)
            if tree.exhausted || errors.count >= Self.maxErrors { throw RuleFileErrors(errors: errors) }
            return nil
        } catch {
            errors.append(ConfigError(file: tree.file, line: 0, column: 0, message: "\(error)")); return nil
        }
    }

    mutating func read(_ text: String) throws -> RuleFile {
        let root: Node?
        do { root = try tree.root(text) } catch let e as ConfigError { throw RuleFileErrors(errors: [e]) }
        return try readGroups(root)
    }

    mutating func readGroups(_ root: Node?) throws -> RuleFile {
        guard let root else { return RuleFile(source: tree.file, groups: []) }
        guard let top = try attempt({ try $0.mapping(root, "rule file", allowed: ["groups"]) }) else { return RuleFile(source: tree.file, groups: []) }
        var groups: [RuleGroup] = []
        var names = Set<String>()
        for (_, _, value) in top {
            for g in try attempt({ try $0.sequence(value, "groups") }) ?? [] {
                guard let group = try readGroup(g) else { continue }
                if !names.insert(group.name).inserted { errors.append(tree.error(at: g, "group '\(group.name)': a group of this name comes earlier in the file")) }
                groups.append(group)
            }
        }
        return RuleFile(source: tree.file, groups: groups)
    }

    mutating func readGroup(_ node: Node) throws -> RuleGroup? {
        if errors.count >= Self.maxErrors { throw RuleFileErrors(errors: errors) }
        guard let fields = try attempt({ try $0.mapping(node, "group", allowed: ["name", "interval", "limit", "rules"]) }) else { return nil }
        var group = RuleGroup(name: "", interval: nil, limit: 0, rules: [], line: node.mark?.line ?? 0)
        for (key, _, value) in fields {
            switch key {
            case "name": group.name = try attempt { try $0.string(value, "group name") } ?? ""
            case "interval":
                group.interval = try attempt { try $0.duration(value, "group interval") }
                if group.interval == 0 { errors.append(tree.error(at: value, "group interval must be more than 0")) }
            case "limit": group.limit = try attempt { try $0.integer(value, "group limit") } ?? 0
            default:
                for r in try attempt({ try $0.sequence(value, "rules") }) ?? [] {
                    if let rule = try readRule(r, group: group.name) { group.rules.append(rule) }
                }
            }
        }
        if group.name.isEmpty { errors.append(tree.error(at: node, "group without a name")) }
        return group
    }

    static let ruleFields = ["alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations",
                             "forecast", "anomaly", "state", "restart_loop", "silent", "compliance", "actions"]

    mutating func readRule(_ node: Node, group: String) throws -> Rule? {
        if errors.count >= Self.maxErrors { throw RuleFileErrors(errors: errors) }
        guard let fields = try attempt({ try $0.mapping(node, "rule", allowed: Self.ruleFields) }) else { return nil }
        let before = errors.count
        var byKey: [String: (Node, Node)] = [:]
        for (k, kn, v) in fields { byKey[k] = (kn, v) }
        let where_ = "group '\(group)'"
        // Kind and name.
        var kind: Rule.Kind?
        switch (byKey["alert"], byKey["record"]) {
        case (nil, nil): errors.append(tree.error(at: node, "\(where_): a rule needs 'alert' or 'record'"))
        case (.some, .some): errors.append(tree.error(at: byKey["record"]!.0, "\(where_): a rule has 'alert' or 'record', not both"))
        case (let a?, nil):
            if let n = try attempt({ try $0.string(a.1, "alert name") }) {
                if n.isEmpty { errors.append(tree.error(at: a.1, "\(where_): empty alert name")) }
                kind = .alert(n)
            }
        case (nil, let r?):
            if let n = try attempt({ try $0.string(r.1, "record name") }) {
                if !Self.isMetricName(n) { errors.append(tree.error(at: r.1, "\(where_): invalid recording rule name '\(n)' (letters, digits, _ and :, not starting with a digit)")) }
                kind = .record(n)
            }
        }
        let label = kind.map { k -> String in
            switch k { case .alert(let n): return "alert '\(n)'"; case .record(let n): return "record '\(n)'" }
        } ?? "rule"
        // The condition: `expr`, or one of HostTwin's.
        let conditionKeys = ["expr", "forecast", "anomaly", "state", "restart_loop", "silent", "compliance"].filter { byKey[$0] != nil }
        var condition: Rule.Condition?
        var conditionText = ""
        if conditionKeys.isEmpty { errors.append(tree.error(at: node, "\(label): no condition (give 'expr', or one of 'forecast', 'anomaly', 'state', 'restart_loop', 'silent', 'compliance')")) }
        else if conditionKeys.count > 1 { errors.append(tree.error(at: byKey[conditionKeys[1]]!.0, "\(label): give one condition, not \(conditionKeys.joined(separator: " and "))")) }
        else if let (_, v) = byKey["expr"] {
            if let text = try attempt({ try $0.string(v, "expr") }) {
                conditionText = text
                do {
                    let e = try PromQLParser.parse(text)
                    switch e.type {
                    case .vector, .scalar: condition = .promql(e)
                    default: errors.append(tree.error(at: v, "\(label): expr must give an instant vector or a scalar, not a \(e.type == .matrix ? "range vector" : "string")"))
                    }
                } catch {
                    errors.append(tree.error(at: v, "\(label): bad PromQL: \(error)"))
                }
            }
        } else if let key = conditionKeys.first, let (_, v) = byKey[key] {
            if let c = try attempt({ try TwinCondition.read(key, v, &$0) }) {
                condition = .twin(c)
                conditionText = c.description
            }
        }
        if case .record? = kind, case .twin? = condition { errors.append(tree.error(at: node, "\(label): recording rules take 'expr' only")) }
        // Durations, only for alerts.
        var holdFor: Int64 = 0, keepFiringFor: Int64 = 0
        for (key, target) in [("for", 0), ("keep_firing_for", 1)] {
            guard let (kn, v) = byKey[key] else { continue }
            if case .record? = kind { errors.append(tree.error(at: kn, "\(label): '\(key)' is for alerting rules only")); continue }
            let d = try attempt { try $0.duration(v, key) } ?? 0
            if target == 0 { holdFor = d } else { keepFiringFor = d }
        }
        // Labels and annotations.
        var labels: [(name: String, value: AlertTemplate)] = []
        if let (_, v) = byKey["labels"] {
            for (name, kn, value, vn) in try attempt({ try $0.stringMap(v, "labels") }) ?? [] {
                if !Self.isLabelName(name) || name == "__name__" { errors.append(tree.error(at: kn, "\(label): invalid label name '\(name)'")); continue }
                if name == "alertname" { errors.append(tree.error(at: kn, "\(label): the label 'alertname' is set from the alert's name")); continue }
                do {
                    let t = try AlertTemplate(value)
                    if case .record? = kind, !t.isPlain { errors.append(tree.error(at: vn, "\(label): recording rule labels cannot be templates")) }
                    labels.append((name, t))
                } catch { errors.append(tree.error(at: vn, "\(label): label '\(name)': \(error)")) }
            }
        }
        var annotations: [(name: String, value: AlertTemplate)] = []
        if let (kn, v) = byKey["annotations"] {
            if case .record? = kind { errors.append(tree.error(at: kn, "\(label): 'annotations' are for alerting rules only")) }
            for (name, an, value, vn) in try attempt({ try $0.stringMap(v, "annotations") }) ?? [] {
                if !Self.isLabelName(name) { errors.append(tree.error(at: an, "\(label): invalid annotation name '\(name)'")); continue }
                do { annotations.append((name, try AlertTemplate(value))) } catch { errors.append(tree.error(at: vn, "\(label): annotation '\(name)': \(error)")) }
            }
        }
        var actions: [String] = []
        if let (kn, v) = byKey["actions"] {
            if case .record? = kind { errors.append(tree.error(at: kn, "\(label): 'actions' are for alerting rules only")) }
            for a in try attempt({ try $0.sequence(v, "actions") }) ?? [] {
                guard let name = try attempt({ try $0.string(a, "action name") }) else { continue }
                guard Self.isLabelName(name) else { errors.append(tree.error(at: a, "\(label): action names are words (letters, digits, _): '\(name)'")); continue }
                actions.append(name)
            }
        }
        guard errors.count == before, let kind, let condition else { return nil }
        return Rule(kind: kind, condition: condition, conditionText: conditionText, holdFor: holdFor, keepFiringFor: keepFiringFor,
                    labels: labels.sorted { $0.name < $1.name }, annotations: annotations.sorted { $0.name < $1.name },
                    actions: actions, line: node.mark?.line ?? 0)
    }

    static func isLabelName(_ s: String) -> Bool {
        guard let f = s.utf8.first, f == UInt8(ascii: "_") || (f | 0x20 >= UInt8(ascii: "a") && f | 0x20 <= UInt8(ascii: "z")) else { return false }
        return s.utf8.allSatisfy { c in c == UInt8(ascii: "_") || (c >= 48 && c <= 57) || (c | 0x20 >= 97 && c | 0x20 <= 122) }
    }

    static func isMetricName(_ s: String) -> Bool {
        guard let f = s.utf8.first, f == UInt8(ascii: "_") || f == UInt8(ascii: ":") || (f | 0x20 >= 97 && f | 0x20 <= 122) else { return false }
        return s.utf8.allSatisfy { c in c == UInt8(ascii: "_") || c == UInt8(ascii: ":") || (c >= 48 && c <= 57) || (c | 0x20 >= 97 && c | 0x20 <= 122) }
    }
}

extension RuleFile {
    /// The built-in rule set's text (Resources/default-rules.yml).
    public static var defaultText: String { String(decoding: PackageResources.default_rules_yml, as: UTF8.self) }

    /// The built-in rule set, which works on any host with no configuration.
    public static func defaults() throws -> RuleFile { try parse(defaultText, source: "<default rules>") }

    /// The compliance pack's text (`hosttwin rules show --compliance`).
    public static var complianceText: String { String(decoding: PackageResources.compliance_rules_yml, as: UTF8.self) }

    /// The compliance pack, parsed.
    public static func compliance() throws -> RuleFile { try parse(complianceText, source: "<compliance pack>") }
}
