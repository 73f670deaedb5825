import Foundation
import Logging
import Testing
import TwinCore
import TwinAnalytics
import TwinQuery
@testable import TwinRules
@testable import TwinServer
@testable import TwinStorage

@Suite struct RulesTests {
    static let rulesDir = Fixtures.packageRoot + "/conformance/rules"

    /// The unit-test files that promtool of Prometheus 2.42 passes (scripts/rules-test.sh checks that in CI)
    /// pass here too: alerts, `for:`, keep_firing_for, recording rules feeding alerts, stale markers,
    /// `ALERTS`, external labels and the template functions give the same labels and annotations.
    @Test func promtoolUnitTestsPass() {
        let r = PromtoolTestRunner.run(path: Self.rulesDir + "/node-alerts.test.yml")
        #expect(r.passed, "\(r.failures.joined(separator: "\n"))")
        #expect(r.tests == 5)
    }

    /// Wrong expectations fail, naming the alert and the time.
    @Test func wrongExpectationsFail() {
        let r = PromtoolTestRunner.run(path: Self.rulesDir + "/failing.test.yml")
        #expect(!r.passed)
        #expect(r.failures.count == 1 && r.failures[0].contains("alertname: NodeDown, time: 30s"), "\(r.failures)")
    }

    @Test func theDefaultRulesLoad() throws {
        let f = try RuleFile.defaults()
        #expect(f.rules.count >= 14)
        let names = Set(f.rules.map(\.name))
        for n in ["NewListeningPort", "ServiceFailed", "ProcessRestartLoop", "FilesystemAlmostFull", "FilesystemFillingUp", "MemoryPressure",
                  "SwapStorm", "OOMKill", "CPUSaturated", "ClockSkew", "HostSilent", "HostAnomalous"] {
            #expect(names.contains(n), "\(n) missing from the default rules")
        }
    }

    /// Hostile or mistaken rule files: every error reported with its line, nothing loaded.
    @Test func badRuleFilesNameTheLine() throws {
        let text = """
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                fro: 5m
              - alert: B
                expr: rate(up[5m]
              - record: bad name
                expr: up
              - record: ok_name
                expr: up
                for: 1m
              - alert: C
                expr: up
                annotations:
                  x: '{{ query "up" }}'
                  y: '{{ range $labels }}{{ end }}'
                  z: '{{ $secret }}'
              - alert: D
                expr: up[5m]
                labels:
                  9bad: x
              - alert: E
                state: {kind: nosuchkind}
              - alert: F
                expr: up
                forecast: {expr: up, below: 0, within: 1h}
          - name: g
            rules: []
        """
        do {
            _ = try RuleFile.parse(text, source: "bad.yml")
            Issue.record("a bad file loaded")
        } catch let e as RuleFileErrors {
            let lines = e.errors.map { "\($0.line): \($0.message)" }
            func has(_ line: Int, _ words: String) -> Bool { e.errors.contains { $0.line == line && $0.message.contains(words) } }
            #expect(has(6, "unknown field 'fro'"), "\(lines)")
            #expect(has(8, "bad PromQL"), "\(lines)")
            #expect(has(9, "invalid recording rule name 'bad name'"), "\(lines)")
            #expect(has(13, "'for' is for alerting rules only"), "\(lines)")
            #expect(has(17, "templates may not run queries"), "\(lines)")
            #expect(has(18, "{{range}} is not supported"), "\(lines)")
            #expect(has(19, "undefined variable \"$secret\""), "\(lines)")
            #expect(has(21, "must give an instant vector"), "\(lines)")
            #expect(has(23, "invalid label name '9bad'"), "\(lines)")
            #expect(has(25, "unknown kind 'nosuchkind'"), "\(lines)")
            #expect(has(28, "give one condition"), "\(lines)")
            #expect(has(29, "a group of this name comes earlier"), "\(lines)")
            #expect(e.description.hasPrefix("bad.yml:6:"), "\(e.description)")
        }
    }

    @Test func notYAMLAndHugeExpansionsAreRefused() throws {
        #expect(throws: RuleFileErrors.self) { try RuleFile.parse("groups: [\n  - name: x", source: "broken.yml") }
        let laughs = try String(contentsOfFile: Fixtures.packageRoot + "/Fuzz/corpus/rules/seed-laughs.yml", encoding: .utf8)
        // 9^7 aliased elements: refused after at most 100 errors, within the node budget, in well under a second.
        let started = TwinTime.nowMillis()
        do {
            _ = try RuleFile.parse(laughs, source: "laughs.yml")
            Issue.record("an alias bomb loaded")
        } catch let e as RuleFileErrors {
            #expect(e.errors.count <= 100 && e.errors.count > 0, "\(e.errors.count) errors")
        }
        #expect(TwinTime.nowMillis() - started < 5_000)
        #expect(throws: RuleFileErrors.self) { try RuleFile.parse("- just\n- a list", source: "list.yml") }
    }

    @Test func templatesFormatLikeGo() throws {
        let data = AlertTemplate.Data(labels: ["instance": "web-1:9100", "job": "node"], value: 0.123456, externalLabels: ["dc": "eu"])
        func x(_ t: String) throws -> String { try AlertTemplate(t).expand(data) }
        #expect(try x("{{ $labels.instance | stripPort }} {{ .Labels.job }} {{ $externalLabels.dc }}") == "web-1 node eu")
        #expect(try x("{{ $value }} {{ $value | humanizePercentage }} {{ printf \"%.2f\" $value }}") == "0.123456 12.35% 0.12")
        #expect(try x("{{ $labels.missing }}|") == "|", "a missing label is empty, as with Prometheus' missingkey=zero")
        #expect(try x("a {{- \" b \" -}} c") == "a b c")
        #expect(try x("{{ if and (gt $value 0.1) (eq $labels.job \"node\") }}hot{{ else }}cold{{ end }}") == "hot")
        #expect(try x("{{/* a comment */}}x") == "x")
        #expect(try x("{{ index $labels \"job\" | toUpper }}") == "NODE")
        #expect(try x("{{ humanize \"abc\" }}").hasPrefix("<error expanding template: "))
        #expect(throws: AlertTemplate.TemplateError.self) { try AlertTemplate("{{ $labels.x ") }
        #expect(throws: AlertTemplate.TemplateError.self) { try AlertTemplate("{{ template \"x\" }}") }
        #expect(throws: AlertTemplate.TemplateError.self) { try AlertTemplate("{{ $x := 1 }}") }
        #expect(throws: AlertTemplate.TemplateError.self) { try AlertTemplate("{{ if 1 }}") }
    }

    /// A reload keeps the state of alerts whose rule did not change (a pending alert stays pending from
    /// its first time, a firing one keeps firing); a rule whose `for:` changed starts again.
    @Test func reloadKeepsAlertState() throws {
        let series = SeriesData(labels: Labels(["__name__": "up", "job": "a"]), t: (0...20).map { Int64($0) * 60_000 }, v: Array(repeating: 0, count: 21))
        let recorded = RecordedSeries(keep: 0)
        let engine = PromQLEngine(source: LayeredSource(base: Fixed(series: [series]), recorded: recorded))
        func file(_ hold: String) throws -> RuleFile {
            try RuleFile.parse("groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: \(hold)\n", source: "r.yml")
        }
        let ev = RuleEvaluator(files: [try file("3m")], context: RuleContext(engine: engine, store: nil), recorded: recorded, defaultInterval: 60_000)
        var kinds: [AlertTransition.Kind] = []
        for m in 0...2 { kinds += ev.evaluate(group: 0, at: Int64(m) * 60_000).map(\.kind) }
        #expect(kinds == [.pending])
        ev.load([try file("3m")], defaultInterval: 60_000, at: 150_000)
        kinds = ev.evaluate(group: 0, at: 180_000).map(\.kind)
        #expect(kinds == [.firing], "the pending alert kept its start through the reload")
        #expect(ev.alerts.first?.activeAt == 0)
        ev.load([try file("10m")], defaultInterval: 60_000, at: 200_000)
        kinds = ev.evaluate(group: 0, at: 240_000).map(\.kind)
        #expect(kinds == [.pending], "a changed rule starts again")
    }

    /// A recording rule's series that stops being produced is stale at once (no 5-minute lookback).
    @Test func recordedSeriesGoStale() throws {
        let up = SeriesData(labels: Labels(["__name__": "up", "job": "a"]), t: [0, 60_000, 120_000], v: [1, 1, 0])
        let recorded = RecordedSeries(keep: 0)
        let engine = PromQLEngine(source: LayeredSource(base: Fixed(series: [up]), recorded: recorded))
        let f = try RuleFile.parse("groups:\n- name: g\n  rules:\n  - record: job:up:ok\n    expr: up == 1\n", source: "r.yml")
        let ev = RuleEvaluator(files: [f], context: RuleContext(engine: engine, store: nil), recorded: recorded, defaultInterval: 60_000)
        for m in 0...2 { ev.evaluate(group: 0, at: Int64(m) * 60_000) }
        func count(at t: Int64) throws -> Int {
            guard case .vector(_, let v) = try engine.instant(try PromQLParser.parse("job:up:ok"), at: t) else { return -1 }
            return v.count
        }
        #expect(try count(at: 60_000) == 1)
        #expect(try count(at: 120_000) == 0, "stale from the evaluation that no longer produced it")
        #expect(try count(at: 150_000) == 0)
        guard case .matrix(let m) = try engine.range(try PromQLParser.parse("count_over_time(job:up:ok[5m])"), start: 120_000, end: 120_000, step: 60_000) else {
            Issue.record("no matrix"); return
        }
        #expect(m.first?.points.first?.1 == 2, "a range sees the samples, not the marker")
    }

    /// State conditions over a real store: a port that was not listening at the baseline fires while it
    /// listens and resolves when it closes; a port that was there does not; `absent` fires per host.
    @Test func stateConditionsOnAStore() throws {
        let dir = try temporaryDirectory("hosttwin-rules-state")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() / 1000 * 1000 - 600_000
        try w.begin(now: t0, interval: 1000)
        func port(_ p: Int64, _ process: String) -> Entity {
            Entity(kind: .listeningPorts, key: "tcp/0.0.0.0:\(p)", attributes: ["protocol": "tcp", "address": "0.0.0.0", "port": .int(p), "process": .string(process)])
        }
        for s in 0..<300 {
            let t = t0 + Int64(s) * 1000
            var o = Observation(timestamp: t)
            o.set(.host, [Entity(kind: .host, key: "host", attributes: ["hostname": "h"])])
            var ports = [port(22, "sshd")]
            if s >= 100 && s < 200 { ports.append(port(4444, "nc")) }
            o.set(.listeningPorts, ports)
            _ = try w.commit(o)
        }
        let f = try RuleFile.parse("""
            groups:
            - name: g
              rules:
              - alert: NewPort
                state: {kind: listening_ports, new: true, labels_from: [port, process]}
              - alert: NoSSH
                state: {kind: listening_ports, match: {port: "22"}, absent: true}
              - alert: NoHTTP
                state: {kind: listening_ports, match: {port: "80"}, absent: true}
            """, source: "s.yml")
        let recorded = RecordedSeries(keep: 0)
        let ev = RuleEvaluator(files: [f], context: RuleContext(engine: PromQLEngine(source: LayeredSource(base: StoreSampleSource(store: store), recorded: recorded)), store: store),
                               recorded: recorded, defaultInterval: 1000)
        var log: [String] = []
        for s in [90, 150, 250] {
            for tr in ev.evaluate(group: 0, at: t0 + Int64(s) * 1000) { log.append("\(s) \(tr.kind) \(tr.alert.rule) \(tr.alert.labels["port"] ?? "-") \(tr.alert.labels["process"] ?? "-")") }
        }
        #expect(ev.groups[0].health.allSatisfy { $0.health == "ok" }, "\(ev.groups[0].health.map(\.lastError))")
        #expect(log == ["90 pending NoHTTP 80 -", "90 firing NoHTTP 80 -", "150 pending NewPort 4444 nc", "150 firing NewPort 4444 nc", "250 resolved NewPort 4444 nc"], "\(log)")
    }

    /// A state condition filters a snapshot's list once until the collector hands a new one over (the
    /// files collector does only when a file changed): the same array is not matched again, a new one is,
    /// and a new set-user-ID file in it is found.
    @Test func aSnapshotListIsFilteredOncePerHandover() {
        func file(_ path: String, setuid: Bool) -> Entity {
            Entity(kind: .files, key: path, attributes: ["path": .string(path), "setuid": .bool(setuid)])
        }
        let filters = SnapshotFilters()
        var calls = 0
        func suid(_ list: [Entity]) -> [String] {
            filters.filter(list, for: "suid files") { calls += 1; return $0.attributes["setuid"] == .bool(true) }.map(\.key)
        }
        let etc = (0..<1000).map { file("/etc/f\($0)", setuid: false) } + [file("/usr/bin/su", setuid: true)]
        #expect(suid(etc) == ["/usr/bin/su"] && calls == 1001)
        let held = etc // the snapshot keeps the list it was handed
        #expect(suid(held) == ["/usr/bin/su"] && calls == 1001, "the same list is not matched again")
        var changed = etc
        changed.append(file("/tmp/.x", setuid: true))
        #expect(suid(changed) == ["/usr/bin/su", "/tmp/.x"] && calls == 2003)
        #expect(suid(Array(changed.dropLast())) == ["/usr/bin/su"] && calls == 3004, "a new list of the same length is matched again")
        #expect(filters.filter(changed, for: "no files") { _ in false }.isEmpty, "each condition has its own")
    }
}

/// A fixed set of series as a sample source.
private struct Fixed: SampleSource {
    var series: [SeriesData]
    func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData] {
        series.filter { s in matchers.allSatisfy { $0.matches(s.labels[$0.name] ?? "") } }.map { s in
            let keep = s.t.indices.filter { s.t[$0] >= from && s.t[$0] <= to }
            return SeriesData(labels: s.labels, t: keep.map { s.t[$0] }, v: keep.map { s.v[$0] })
        }
    }
}

/// The rule engine of a running twin over a real store and the HTTP API answering for it in process.
@Suite struct RuleRunnerTests {
    /// A store of `seconds` ticks ending five minutes ago: room a at 20 °C, then 90 °C from the 60th second;
    /// room b, when asked for, at 20 °C throughout.
    func temperatureStore(_ name: String, seconds: Int, roomB: Bool) throws -> (dir: String, store: TwinStore, t0: Int64) {
        let dir = try temporaryDirectory(name)
        let store = try TwinStore.open(dataDir: dir + "/store")
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() / 1000 * 1000 - 300_000
        try w.begin(now: t0, interval: 1000)
        for s in 0..<seconds {
            var o = Observation(timestamp: t0 + Int64(s) * 1000)
            o.add("temperature_celsius", Labels(["room": "a"]), s < 60 ? 20 : 90)
            if roomB { o.add("temperature_celsius", Labels(["room": "b"]), 20) }
            _ = try w.commit(o)
        }
        return (dir, store, t0)
    }

    @Test func alertsAreStoredServedAndRestored() async throws {
        let (dir, store, t0) = try temperatureStore("hosttwin-rule-runner", seconds: 240, roomB: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rules = dir + "/rules.yml"
        let good = """
            groups:
            - name: heat
              interval: 10s
              rules:
              - record: room:temperature:max
                expr: max by (room) (temperature_celsius)
              - alert: Hot
                expr: room:temperature:max > 50
                for: 30s
                labels: {severity: page}
                annotations: {summary: 'Room {{ $labels.room }} at {{ $value }} °C'}
            """
        try good.write(toFile: rules, atomically: true, encoding: .utf8)
        let sources = RuleSources(files: [rules], includeDefaults: false)
        let runner = try RuleRunner(store: store, sources: sources, now: t0)
        var seen: [String] = []
        for s in stride(from: 0, to: 240, by: 10) {
            seen += try runner.evaluate(at: t0 + Int64(s) * 1000).map { "\(($0.time - t0) / 1000) \($0.kind)" }
        }
        #expect(seen == ["60 pending", "90 firing"], "\(seen)")

        var api = TwinAPI(store: store, live: nil, metrics: SelfMetrics.bootstrap(), logger: Logger(label: "test"))
        api.rules = runner
        let alerts = await api.get("/api/v1/alerts")
        #expect(alerts.status == 200 && alerts.body.contains(#""alertname":"Hot""#) && alerts.body.contains(#""state":"firing""#)
                && alerts.body.contains(#""value":"9e+01""#) && alerts.body.contains("Room a at 90 °C"), "\(alerts.body)")
        let before = await api.get("/api/v1/alerts?at=\((t0 + 75_000) / 1000)")
        #expect(before.body.contains(#""state":"pending""#), "as of 75 s the alert was pending: \(before.body)")
        let earlier = await api.get("/api/v1/alerts?at=\((t0 + 30_000) / 1000)")
        #expect(earlier.body.contains(#""alerts":[]"#), "\(earlier.body)")
        let groups = await api.get("/api/v1/rules")
        #expect(groups.body.contains(#""type":"recording""#) && groups.body.contains(#""duration":30"#) && groups.body.contains(#""health":"ok""#), "\(groups.body)")
        let onlyAlerts = await api.get("/api/v1/rules?type=alert")
        #expect(!onlyAlerts.body.contains(#""type":"recording""#))
        let recorded = await api.get("/api/v1/query?query=room:temperature:max&time=\((t0 + 230_000) / 1000)")
        #expect(recorded.body.contains(#""room":"a""#) && recorded.body.contains(#""90""#), "the recorded series is queryable: \(recorded.body)")
        let reload = await api.get("/-/reload")
        #expect(reload.status == 405 || reload.status == 401 || reload.status == 403, "reload is a POST for admins: \(reload.status)")

        // A bad edit is refused and the old rules stay; a good one keeps the firing alert firing.
        try "groups: [{name: heat, rules: [{alert: Hot, expr: 'room:temperature:max >'}]}]".write(toFile: rules, atomically: true, encoding: .utf8)
        #expect(throws: RuleFileErrors.self) { try runner.reload() }
        #expect(runner.snapshot().first?.group.rules.count == 2)
        #expect(runner.reloadStatus?.error?.contains("bad PromQL") == true)

        // A restart restores the firing alert from the store, with its start.
        try good.write(toFile: rules, atomically: true, encoding: .utf8)
        let restored = try RuleRunner(store: store, sources: sources, now: t0 + 240_000)
        #expect(restored.alerts().map(\.state) == [.firing])
        #expect(restored.alerts().first?.activeAt == t0 + 60_000)
    }

    /// An alert without `for` is pending and firing in one evaluation: only the firing transition is stored
    /// (with its `activeAt`); one with `for` stores both. Both are restored firing.
    @Test func anAlertWithoutForStoresOnlyItsFiring() throws {
        let (dir, store, t0) = try temperatureStore("hosttwin-rule-instant", seconds: 120, roomB: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rules = dir + "/rules.yml"
        try "groups: [{name: heat, interval: 10s, rules: [{alert: Hot, expr: 'temperature_celsius > 50', for: 30s}, {alert: Scorching, expr: 'temperature_celsius > 80'}]}]"
            .write(toFile: rules, atomically: true, encoding: .utf8)
        let sources = RuleSources(files: [rules], includeDefaults: false)
        let runner = try RuleRunner(store: store, sources: sources, now: t0)
        var transitions: [String] = []
        for s in stride(from: 0, to: 120, by: 10) {
            transitions += try runner.evaluate(at: t0 + Int64(s) * 1000).map { "\($0.alert.rule) \($0.kind)" }
        }
        #expect(transitions.sorted() == ["Hot firing", "Hot pending", "Scorching firing", "Scorching pending"], "the state machine is Prometheus's")
        let stored = try store.alertHistory(from: t0, to: .max).map { "\($0.rule) \($0.state) \(($0.time - t0) / 1000) \(($0.activeAt - t0) / 1000)" }
        #expect(stored.sorted() == ["Hot firing 90 60", "Hot pending 60 60", "Scorching firing 60 60"], "\(stored)")
        let restored = try RuleRunner(store: store, sources: sources, now: t0 + 120_000)
        #expect(restored.alerts().map(\.state) == [.firing, .firing])
    }

    /// Whether a group is due is known without evaluating: before the first evaluation, then each group's
    /// interval after its last one; a reload makes new groups due at once. Each evaluation's cost is told per group.
    @Test func theRunnerSaysWhenAGroupIsDue() throws {
        let (dir, store, t0) = try temperatureStore("hosttwin-rule-due", seconds: 30, roomB: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rules = dir + "/rules.yml"
        try "groups: [{name: a, interval: 10s, rules: [{alert: Hot, expr: 'temperature_celsius > 50'}]}, {name: b, interval: 15s, rules: [{alert: Cold, expr: 'temperature_celsius < 0'}]}]"
            .write(toFile: rules, atomically: true, encoding: .utf8)
        let runner = try RuleRunner(store: store, sources: RuleSources(files: [rules], includeDefaults: false), now: t0)
        #expect(runner.isDue(at: t0))
        // Each evaluated group's cost is told, timed finer than a millisecond (the API's evaluationTime).
        var costs: [String] = []
        try runner.evaluate(at: t0) { group, seconds in if seconds > 0 { costs.append(group) } }
        #expect(costs == ["a", "b"])
        #expect(runner.snapshot().allSatisfy { $0.duration > 0 && $0.health.allSatisfy { $0.duration > 0 } })
        #expect(!runner.isDue(at: t0 + 9_999) && runner.isDue(at: t0 + 10_000))
        costs = []
        try runner.evaluate(at: t0 + 10_000) { group, seconds in if seconds > 0 { costs.append(group) } }
        #expect(costs == ["a"])
        #expect(!runner.isDue(at: t0 + 14_999) && runner.isDue(at: t0 + 15_000), "group b, last at 0, is next")
        try "groups: [{name: c, interval: 1m, rules: [{alert: Hot, expr: 'temperature_celsius > 50'}]}]".write(toFile: rules, atomically: true, encoding: .utf8)
        _ = try runner.reload(at: t0 + 11_000)
        #expect(runner.isDue(at: t0 + 11_000), "a new group has not run yet")
    }

    /// A pending alert that clears before its `for:` is up leaves no record, also when a restart came
    /// between (its restored pending record is withdrawn); one that fires keeps its pending record.
    @Test func anAlertThatClearsBeforeFiringLeavesNoRecord() throws {
        let dir = try temporaryDirectory("hosttwin-rule-withdrawn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir + "/store")
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() / 1000 * 1000 - 300_000
        try w.begin(now: t0, interval: 1000)
        for s in 0..<200 {
            var o = Observation(timestamp: t0 + Int64(s) * 1000)
            o.add("temperature_celsius", Labels(["room": "brief"]), (20..<40).contains(s) ? 90 : 20)
            o.add("temperature_celsius", Labels(["room": "long"]), s >= 100 ? 90 : 20)
            _ = try w.commit(o)
        }
        let rules = dir + "/rules.yml"
        try "groups: [{name: heat, interval: 10s, rules: [{alert: Hot, expr: 'temperature_celsius > 50', for: 30s}]}]"
            .write(toFile: rules, atomically: true, encoding: .utf8)
        let sources = RuleSources(files: [rules], includeDefaults: false)
        var runner = try RuleRunner(store: store, sources: sources, now: t0)
        var transitions: [String] = []
        for s in stride(from: 0, through: 200, by: 10) {
            if s == 40 {
                runner = try RuleRunner(store: store, sources: sources, now: t0 + 35_000)
                #expect(runner.alerts().map { "\($0.labels["room"] ?? "") \($0.state)" } == ["brief pending"], "the restart put the pending alert back")
            }
            transitions += try runner.evaluate(at: t0 + Int64(s) * 1000).map { "\(($0.time - t0) / 1000) \($0.kind) \($0.alert.labels["room"] ?? "")" }
        }
        #expect(transitions == ["20 pending brief", "40 cleared brief", "100 pending long", "130 firing long"], "\(transitions)")
        let stored = try store.alertHistory(from: t0, to: .max).map { "\(($0.time - t0) / 1000) \($0.state) \($0.labels["room"] ?? "")" }
        #expect(stored == ["100 pending long", "130 firing long"], "\(stored)")
        #expect(try store.activeAlerts(at: t0 + 30_000).isEmpty, "the withdrawn alert is not pending as of 30 s")
    }

    /// A `restart_loop` condition follows its window as it moves (reading only what started or ended since
    /// the evaluation before) and finds, at every evaluation, what a fresh read of the whole window finds —
    /// on a store written tick by tick across an hour boundary, its closed versions packed every minute as
    /// the sealer packs them.
    @Test func restartLoopsFollowTheWindowAsAFreshReadFindsThem() throws {
        let dir = try temporaryDirectory("hosttwin-restart-follow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let t0: Int64 = 1_800_000_000_000 - 20 * 60_000
        try w.begin(now: t0 - 1, interval: 1000)
        let file = try RuleFile.parse("groups:\n- name: g\n  interval: 5s\n  rules:\n  - alert: Loop\n    restart_loop: {within: 10m}\n", source: "r.yml")
        let recorded = RecordedSeries(keep: 0)
        let engine = PromQLEngine(source: LayeredSource(base: StoreSampleSource(store: store), recorded: recorded))
        let ev = RuleEvaluator(files: [file], context: RuleContext(engine: engine, store: store), recorded: recorded, defaultInterval: 5_000)
        var looks = 0, agreed = 0
        var firingAt: [Int] = []
        let everyFive = ProcessRunsWatch(), everyMinute = ProcessRunsWatch()
        for s in 0..<(30 * 60) {
            let t = t0 + Int64(s) * 1000
            // init changes every minute (a new version of a process started before the window).
            var procs = [Entity(kind: .processes, key: "1@0", attributes: ["pid": 1, "ppid": 0, "command": "/sbin/init", "minute": .int(Int64(s / 60))])]
            // A service restarted 2 s after each exit that lives 39 s and changes state at 34 s, from minute 3
            // to 15: a version still open at one look may start before the next look's read, which then
            // learns its end from the versions that ended.
            if (180..<900).contains(s), (s - 180) % 41 < 39 {
                let run = (s - 180) / 41
                procs.append(Entity(kind: .processes, key: "\(2000 + run)@\(t0 + 180_000 + Int64(run) * 41_000)",
                                    attributes: ["pid": .int(Int64(2000 + run)), "ppid": 1, "command": "/usr/bin/flaky --serve", "unit": "flaky.service",
                                                 "after_exit": "exit 1", "state": (s - 180) % 41 < 34 ? "S" : "R"]))
            }
            // A polling loop whose program exits 0: not a loop.
            if s % 30 < 25 {
                let run = s / 30
                procs.append(Entity(kind: .processes, key: "\(5000 + run)@\(t0 + Int64(run) * 30_000)",
                                    attributes: ["pid": .int(Int64(5000 + run)), "ppid": 900, "command": "sleep 25", "after_exit": "exit 0"]))
            }
            var o = Observation(timestamp: t)
            o.set(.processes, procs)
            _ = try w.commit(o)
            if s % 60 == 59 { try store.packVersions(before: t) }
            guard s % 5 == 0, s >= 30 else { continue }
            ev.evaluate(group: 0, at: t)
            if ev.alerts.contains(where: { $0.state == .firing && $0.labels["program"] == "flaky" }) { firingAt.append(s) }
            // The rule looks once a minute (in between the evaluator reuses the condition); a watch that looks
            // every 5 s reads 35 s each time, so a version open at one look often started before the next
            // look's read. Both must find the same runs in a row as a fresh read of the window.
            let fresh = try AnomalyScan.restartLoops(store: store, from: t - 600_000, to: t).map { "\($0.subject): \($0.evidence)" }
            for (watch, every) in [(everyFive, 5), (everyMinute, 60)] where (s - 30) % every == 0 {
                let followed = try watch.restartLoops(store, within: 600_000, at: t).map { "\($0.subject): \($0.evidence)" }
                looks += 1
                if followed == fresh { agreed += 1 } else { Issue.record("at \(s) s, looking every \(every) s: followed \(followed), fresh \(fresh)") }
            }
        }
        #expect(looks == 354 + 30 && agreed == looks)
        #expect(firingAt.first.map { (380...450).contains($0) } == true && firingAt.last.map { (900...1_500).contains($0) } == true,
                "the loop is found a minute after its fifth run and gone ten minutes after it stopped: \(firingAt.first ?? -1)–\(firingAt.last ?? -1) s")
        #expect(try store.database.read { db in try db.value("SELECT count(*) FROM version_blocks")?.int64 ?? 0 } > 10, "closed versions were packed")
        // The watch reads only the runs' attributes, from rows and from packed blocks alike.
        let read = try store.versionsStarting(from: t0, to: t0 + 30 * 60_000, kinds: [.processes], attributes: ProcessRuns.attributes)
        #expect(read.count > 100 && read.allSatisfy { $0.kind == .processes && $0.attributes["state"] == nil && $0.attributes["pid"] == nil })
        #expect(read.contains { $0.attributes["command"] == "/usr/bin/flaky --serve" && $0.attributes["unit"] == "flaky.service" })
        let ended = try store.versionsEnding(from: t0, to: t0 + 30 * 60_000, kinds: [.processes], attributes: ["host"])
        #expect(!ended.isEmpty && ended.allSatisfy { $0.attributes.isEmpty })
    }

    /// A run keeps its command's hash and its first 200 characters (a compiler's command line is tens of
    /// kilobytes, and a build starts thousands in a rule's window): two programs whose command lines differ
    /// only past that are two loops, each named by the shortened command.
    @Test func restartLoopsTellLongCommandsApartByTheirHash() {
        let common = "/usr/bin/worker " + String(repeating: "--option=value ", count: 20)
        var versions: [EntityVersion] = []
        for (k, queue) in ["--queue=a", "--queue=b"].enumerated() {
            // Six runs of 1 s, each 2 s after the last one's exit; the two programs' runs interleave, so
            // taken for one program they would make a single loop.
            for run in 0..<6 {
                let start = Int64(run) * 3_000 + Int64(k) * 1_500, pid = Int64(1000 + 10 * run + k)
                versions.append(EntityVersion(kind: .processes, key: "\(pid)@\(start)", attributes: ["pid": .int(pid), "ppid": 700, "command": .string(common + queue)],
                                              validFrom: start, validTo: start + 1_000))
            }
        }
        var runs = ProcessRuns()
        runs.started(versions.sorted { $0.validFrom < $1.validFrom })
        let loops = runs.restartLoops()
        #expect(loops.count == 2, "\(loops)")
        #expect(loops.allSatisfy { $0.subject.count == ProcessRuns.shownCommand && $0.subject.hasSuffix("…") && common.hasPrefix($0.subject.dropLast()) }, "\(loops.map(\.subject))")
    }
}

@Suite struct TimelineTests {
    /// An incident's story from the versions: what the first observation found is not part of it; a process
    /// start, a port opened and closed, a package upgrade and an alert come in time order.
    @Test func theStoryOfAWindow() throws {
        let dir = try temporaryDirectory("hosttwin-timeline")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() / 1000 * 1000 - 600_000
        try w.begin(now: t0, interval: 1000)
        for s in 0..<300 {
            var o = Observation(timestamp: t0 + Int64(s) * 1000)
            var procs = [Entity(kind: .processes, key: "1@0", attributes: ["pid": 1, "ppid": 0, "user": "root", "command": "/sbin/init"])]
            if s >= 50 { procs.append(Entity(kind: .processes, key: "4242@1", attributes: ["pid": 4242, "ppid": 1, "user": "eve", "command": "nc -l 4444"])) }
            o.set(.processes, procs)
            o.set(.listeningPorts, s >= 100 && s < 200 ? [Entity(kind: .listeningPorts, key: "tcp/0.0.0.0/4444", attributes: ["protocol": "tcp", "address": "0.0.0.0", "port": 4444, "process": "nc"])] : [])
            o.set(.packages, [Entity(kind: .packages, key: "openssl:amd64", attributes: ["name": "openssl", "version": s < 150 ? "3.0.9" : "3.0.11"])])
            _ = try w.commit(o)
        }
        try store.recordAlerts([AlertRecord(time: t0 + 120_000, state: "firing", group: "g", rule: "NewListeningPort", labels: ["alertname": "NewListeningPort", "port": "4444"],
                                            annotations: ["summary": "port 4444"], value: 1, activeAt: t0 + 120_000, firedAt: t0 + 120_000)])
        let story = try Timeline.build(store: store, from: t0, to: t0 + 300_000).filter { !$0.what.hasPrefix("twin") }
        let lines = story.map { "\(($0.time - t0) / 1000) \($0.what) \($0.subject) \($0.detail)" }
        #expect(lines == [
            "50 process started pid 4242 eve (parent 1): nc -l 4444",
            "100 port opened tcp 0.0.0.0:4444 nc",
            "120 alert firing NewListeningPort: port 4444 {alertname=\"NewListeningPort\",port=\"4444\"}",
            "150 package upgraded openssl 3.0.9 → 3.0.11",
            "200 port closed tcp 0.0.0.0:4444 nc",
        ], "\(lines)")
    }
}
