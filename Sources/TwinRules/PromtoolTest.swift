import Foundation
import TwinCore
import TwinQuery
import Yams

/// Runs rule unit tests in `promtool test rules`' file format (Prometheus 2.42): input series in the
/// expanding notation (`0+10x5`, `_`, `stale`), `alert_rule_test` (the firing alerts' labels and
/// annotations at an `eval_time`) and `promql_expr_test`. The same files pass or fail under both tools:
/// `scripts/rules-test.sh` runs them through each.
public enum PromtoolTestRunner {
    /// One test file's outcome.
    public struct FileResult: Sendable, Encodable {
        public var file: String
        public var tests: Int
        /// Each failure, in promtool's words where it has them.
        public var failures: [String]
        public var passed: Bool { failures.isEmpty }
    }

    /// Reads and runs one test file.
    public static func run(path: String) -> FileResult {
        var result = FileResult(file: path, tests: 0, failures: [])
        do {
            guard let data = FileManager.default.contents(atPath: path), data.count <= ConfigTree.maxBytes,
                  let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(file: path, line: 0, column: 0, message: "cannot read the file (missing, too large or not UTF-8)")
            }
            var tree = ConfigTree(file: path, maxNodes: 2_000_000)
            guard let root = try tree.root(text) else { throw tree.error(at: nil, "empty test file") }
            let file = try TestFile.read(root, &tree)
            let dir = (path as NSString).deletingLastPathComponent
            var rules: [RuleFile] = []
            for f in file.ruleFiles {
                let p = f.hasPrefix("/") ? f : (dir.isEmpty ? f : dir + "/" + f)
                let matches = try glob(p)
                guard !matches.isEmpty else { throw ConfigError(file: path, line: 0, column: 0, message: "rule file \(f) not found") }
                for m in matches { rules.append(try RuleFile.load(path: m)) }
            }
            if let order = file.groupOrder {
                let all = rules.flatMap(\.groups)
                var ordered: [RuleGroup] = []
                for name in order {
                    guard let g = all.first(where: { $0.name == name }) else { throw ConfigError(file: path, line: 0, column: 0, message: "group_eval_order: no group '\(name)'") }
                    ordered.append(g)
                }
                ordered += all.filter { !order.contains($0.name) }
                rules = [RuleFile(source: "ordered", groups: ordered)]
            }
            for (i, test) in file.tests.enumerated() {
                result.tests += 1
                let name = test.name.map { "\($0)" } ?? "test \(i + 1)"
                result.failures += run(test, rules: rules, evaluationInterval: file.evaluationInterval).map { "\(name): \($0)" }
            }
        } catch {
            result.failures.append("\(error)")
        }
        return result
    }

    /// Reads test-file text without running it: the number of test groups, or the first error.
    public static func parse(_ text: String, source: String) throws -> Int {
        var tree = ConfigTree(file: source, maxNodes: 2_000_000)
        guard let root = try tree.root(text) else { return 0 }
        return try TestFile.read(root, &tree).tests.count
    }

    static func glob(_ pattern: String) throws -> [String] {
        guard pattern.contains("*") || pattern.contains("?") || pattern.contains("[") else { return [pattern] }
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
    }

    static func run(_ test: TestGroup, rules: [RuleFile], evaluationInterval: Int64) -> [String] {
        let recorded = RecordedSeries(keep: 0)
        let engine = PromQLEngine(source: LayeredSource(base: InputSeries(series: test.series), recorded: recorded))
        let evaluator = RuleEvaluator(files: rules, context: RuleContext(engine: engine, store: nil), recorded: recorded,
                                      defaultInterval: evaluationInterval, externalLabels: test.externalLabels, externalURL: test.externalURL)
        var failures: [String] = []
        let alertTimes = Set(test.alertTests.map(\.evalTime)).sorted()
        let maxT = max(alertTimes.last ?? 0, test.exprTests.map(\.evalTime).max() ?? 0)
        var next = 0
        var ts: Int64 = 0
        while ts <= maxT {
            for g in evaluator.groups.indices {
                evaluator.evaluate(group: g, at: ts)
                for (r, h) in evaluator.groups[g].health.enumerated() where h.lastError != nil {
                    failures.append("rule: \(evaluator.groups[g].group.rules[r].name), time: \(PromQLPrinter.duration(ts)), err: \(h.lastError!)")
                }
            }
            // Alert tests whose eval_time falls in [ts, ts + interval) are checked against this evaluation.
            while next < alertTimes.count, alertTimes[next] >= ts, alertTimes[next] < ts + evaluationInterval {
                let t = alertTimes[next]
                for at in test.alertTests where at.evalTime == t {
                    let got = evaluator.alerts.filter { $0.rule == at.alertname && $0.state == .firing }
                        .map { ($0.labels, $0.annotations) }.sorted(by: lessPair)
                    let exp = at.expected.map { e -> (Labels, Labels) in
                        var l = e.labels
                        l["alertname"] = at.alertname
                        return (Labels(dictionary: l), Labels(dictionary: e.annotations))
                    }.sorted(by: lessPair)
                    if !(got.count == exp.count && zip(got, exp).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }) {
                        failures.append("alertname: \(at.alertname), time: \(PromQLPrinter.duration(t)),\n        exp:\(describe(exp)),\n        got:\(describe(got))")
                    }
                }
                next += 1
            }
            ts += evaluationInterval
        }
        for et in test.exprTests {
            do {
                let e = try PromQLParser.parse(et.expr)
                var got: [(Labels, Double)]
                switch try engine.instant(e, at: et.evalTime) {
                case .vector(_, let v): got = v.map { ($0.labels, $0.value) }
                case .scalar(_, let v): got = [(Labels.empty, v)]
                default: throw PromQLError.execution("expression is not a vector or scalar")
                }
                got.sort { Labels.promLess($0.0, $1.0) }
                let exp = et.expected.sorted { Labels.promLess($0.0, $1.0) }
                let same = got.count == exp.count && zip(got, exp).allSatisfy { a, b in
                    a.0 == b.0 && (a.1 == b.1 || (a.1.isNaN && b.1.isNaN))
                }
                if !same {
                    failures.append("expr: \(et.expr), time: \(PromQLPrinter.duration(et.evalTime)),\n        exp: \(describe(exp)),\n        got: \(describe(got))")
                }
            } catch {
                failures.append("expr: \(et.expr), time: \(PromQLPrinter.duration(et.evalTime)), err: \(error)")
            }
        }
        return failures
    }

    static func lessPair(_ a: (Labels, Labels), _ b: (Labels, Labels)) -> Bool {
        a.0 != b.0 ? Labels.promLess(a.0, b.0) : Labels.promLess(a.1, b.1)
    }

    static func describe(_ alerts: [(Labels, Labels)]) -> String {
        "[" + alerts.map { "Labels:\($0.0.text) Annotations:\($0.1.text)" }.joined(separator: ", ") + "]"
    }

    static func describe(_ samples: [(Labels, Double)]) -> String {
        "[" + samples.map { "\($0.0.text) \(GoFormat.shortest($0.1))" }.joined(separator: ", ") + "]"
    }
}

/// The input series of a test, as a sample source.
struct InputSeries: SampleSource {
    var series: [SeriesData]
    func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        series.compactMap { s in
            guard matchers.allSatisfy({ $0.matches(s.labels[$0.name] ?? "") }) else { return nil }
            let a = s.t.partitioningIndex { $0 >= from }, b = s.t.partitioningIndex { $0 > to }
            return SeriesData(labels: s.labels, t: Array(s.t[a..<b]), v: Array(s.v[a..<b]), staleAt: s.staleAt.filter { $0 >= from && $0 <= to })
        }
    }
}

struct TestGroup {
    struct AlertTest { var evalTime: Int64; var alertname: String; var expected: [(labels: [String: String], annotations: [String: String])] }
    struct ExprTest { var expr: String; var evalTime: Int64; var expected: [(Labels, Double)] }
    var name: String?
    var series: [SeriesData] = []
    var alertTests: [AlertTest] = []
    var exprTests: [ExprTest] = []
    var externalLabels: [String: String] = [:]
    var externalURL = ""
}

struct TestFile {
    var ruleFiles: [String] = []
    var evaluationInterval: Int64 = 60_000
    var groupOrder: [String]?
    var tests: [TestGroup] = []

    static func read(_ root: Node, _ tree: inout ConfigTree) throws -> TestFile {
        var f = TestFile()
        for (k, _, v) in try tree.mapping(root, "test file", allowed: ["rule_files", "evaluation_interval", "group_eval_order", "tests"]) {
            switch k {
            case "rule_files": f.ruleFiles = try tree.sequence(v, "rule_files").map { try tree.string($0, "rule file") }
            case "evaluation_interval":
                f.evaluationInterval = try tree.duration(v, "evaluation_interval")
                guard f.evaluationInterval > 0 else { throw tree.error(at: v, "evaluation_interval must be more than 0") }
            case "group_eval_order": f.groupOrder = try tree.sequence(v, "group_eval_order").map { try tree.string($0, "group name") }
            default: f.tests = try tree.sequence(v, "tests").map { try readGroup($0, &tree) }
            }
        }
        return f
    }

    static func readGroup(_ node: Node, _ tree: inout ConfigTree) throws -> TestGroup {
        var g = TestGroup()
        var interval: Int64 = 60_000
        var inputs: [(Node, Node)] = []
        for (k, _, v) in try tree.mapping(node, "test", allowed: ["interval", "input_series", "alert_rule_test", "promql_expr_test", "external_labels", "external_url", "name"]) {
            switch k {
            case "interval": interval = try tree.duration(v, "interval")
            case "name": g.name = try tree.string(v, "name")
            case "external_url": g.externalURL = try tree.string(v, "external_url")
            case "external_labels": for (n, _, value, _) in try tree.stringMap(v, "external_labels") { g.externalLabels[n] = value }
            case "input_series":
                for s in try tree.sequence(v, "input_series") {
                    var seriesNode: Node?, valuesNode: Node?
                    for (sk, _, sv) in try tree.mapping(s, "input series", allowed: ["series", "values"]) {
                        if sk == "series" { seriesNode = sv } else { valuesNode = sv }
                    }
                    guard let seriesNode, let valuesNode else { throw tree.error(at: s, "an input series needs 'series' and 'values'") }
                    inputs.append((seriesNode, valuesNode))
                }
            case "alert_rule_test":
                for a in try tree.sequence(v, "alert_rule_test") {
                    var t = TestGroup.AlertTest(evalTime: 0, alertname: "", expected: [])
                    for (ak, _, av) in try tree.mapping(a, "alert test", allowed: ["eval_time", "alertname", "exp_alerts"]) {
                        switch ak {
                        case "eval_time": t.evalTime = try tree.duration(av, "eval_time")
                        case "alertname": t.alertname = try tree.string(av, "alertname")
                        default:
                            for e in try tree.sequence(av, "exp_alerts") {
                                var labels: [String: String] = [:], annotations: [String: String] = [:]
                                for (ek, _, ev) in try tree.mapping(e, "expected alert", allowed: ["exp_labels", "exp_annotations"]) {
                                    for (n, _, value, _) in try tree.stringMap(ev, ek) {
                                        if ek == "exp_labels" { labels[n] = value } else { annotations[n] = value }
                                    }
                                }
                                t.expected.append((labels, annotations))
                            }
                        }
                    }
                    g.alertTests.append(t)
                }
            default:
                for e in try tree.sequence(v, "promql_expr_test") {
                    var t = TestGroup.ExprTest(expr: "", evalTime: 0, expected: [])
                    for (ek, _, ev) in try tree.mapping(e, "expression test", allowed: ["expr", "eval_time", "exp_samples"]) {
                        switch ek {
                        case "expr": t.expr = try tree.string(ev, "expr")
                        case "eval_time": t.evalTime = try tree.duration(ev, "eval_time")
                        default:
                            for s in try tree.sequence(ev, "exp_samples") {
                                var labels = Labels.empty, value = 0.0
                                for (sk, _, sv) in try tree.mapping(s, "expected sample", allowed: ["labels", "value"]) {
                                    if sk == "labels" { labels = try seriesLabels(sv, &tree) } else {
                                        let text = try tree.string(sv, "value")
                                        guard let d = SeriesNotation.number(text) else { throw tree.error(at: sv, "value: '\(text)' is not a number") }
                                        value = d
                                    }
                                }
                                t.expected.append((labels, value))
                            }
                        }
                    }
                    g.exprTests.append(t)
                }
            }
        }
        for (sn, vn) in inputs {
            let labels = try seriesLabels(sn, &tree)
            let text = try tree.string(vn, "values")
            guard let values = SeriesNotation.expand(text) else { throw tree.error(at: vn, "values: cannot read '\(text)' (forms: 1 2 3, 0+10x5, 1-1x3, _, _x3, stale)") }
            var t: [Int64] = [], v: [Double] = [], stale: [Int64] = []
            for (i, value) in values.enumerated() {
                let at = Int64(i) * interval
                switch value {
                case .missing: break
                case .stale: stale.append(at)
                case .value(let d): t.append(at); v.append(d)
                }
            }
            g.series.append(SeriesData(labels: labels, t: t, v: v, staleAt: stale))
        }
        return g
    }

    /// `name{a="b"}` or `{__name__="name", a="b"}` as a label set.
    static func seriesLabels(_ node: Node, _ tree: inout ConfigTree) throws -> Labels {
        let text = try tree.string(node, "series")
        guard case .vector(let vs)? = try? PromQLParser.parse(text) else { throw tree.error(at: node, "cannot read series '\(text)' (write it as name{label=\"value\"})") }
        var pairs: [Label] = []
        for m in vs.matchers {
            guard m.op == .equal else { throw tree.error(at: node, "series '\(text)': only = matchers name a series") }
            if !m.value.isEmpty, !pairs.contains(where: { $0.name == m.name }) { pairs.append(Label(m.name, m.value)) }
        }
        if let name = vs.name, !pairs.contains(where: { $0.name == Labels.metricName }) { pairs.append(Label(Labels.metricName, name)) }
        return Labels(pairs)
    }
}

/// The expanding notation of promtool's input series: `1 2 3`, `0+10x5` (0 10 20 30 40 50), `1-1x3`,
/// `5x2` (5 5 5), `_` (no sample), `_x3`, `stale`.
enum SeriesNotation {
    enum Value: Equatable { case value(Double), missing, stale }

    static let maxValues = 1_000_000

    static func expand(_ text: String) -> [Value]? {
        var out: [Value] = []
        for item in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            let s = String(item)
            if s == "_" { out.append(.missing); continue }
            if s == "stale" { out.append(.stale); continue }
            guard let x = s.lastIndex(of: "x"), let n = Int(s[s.index(after: x)...]), n >= 0, n <= maxValues else {
                guard let d = number(s) else { return nil }
                out.append(.value(d))
                continue
            }
            let head = String(s[..<x])
            if head == "_" { out += Array(repeating: .missing, count: n); continue }
            // a+b or a-b (the sign after the first character separates start and step).
            var start = head, step = "0", sign = 1.0
            if let i = head.dropFirst().firstIndex(where: { $0 == "+" || $0 == "-" }), head[head.index(before: i)] != "e" {
                start = String(head[..<i])
                step = String(head[head.index(after: i)...])
                sign = head[i] == "-" ? -1 : 1
            }
            guard let a = number(start), let b = number(step), out.count + n < maxValues else { return nil }
            for k in 0...n { out.append(.value(a + sign * b * Double(k))) }
        }
        return out.count <= maxValues ? out : nil
    }

    static func number(_ s: String) -> Double? {
        switch s {
        case "Inf", "+Inf", "inf", "+inf": return .infinity
        case "-Inf", "-inf": return -.infinity
        case "NaN", "nan": return .nan
        default: return Double(s)
        }
    }
}
