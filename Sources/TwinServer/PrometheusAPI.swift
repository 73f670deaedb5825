import Foundation
import Hummingbird
import TwinCollectors
import TwinCore
import TwinQuery
import TwinRules
import TwinStorage

/// The Prometheus HTTP API (v1): same parameters, envelope, error types and status codes, so
/// Grafana's Prometheus data source and other clients work unchanged.
extension TwinAPI {
    /// The engine for one request: `timeout` can shorten the time limit; `max_source_resolution` (as in
    /// Thanos) `raw` (default), `1m`, or `auto` (1-minute rollups when the step is 5 minutes or more)
    /// chooses the samples read.
    private func engine(_ p: Params, step: Int64? = nil) throws -> PromQLEngine {
        var e = engine
        if let t = try p.duration("timeout"), t > 0 { e.timeout = min(e.timeout, t) }
        if p.smallAttempt {
            e.timeout = min(e.timeout, smallQueryBudget.timeoutMillis)
            e.maxSamples = min(e.maxSamples, smallQueryBudget.maxSamples)
        }
        switch p["max_source_resolution"] ?? "raw" {
        case "raw", "0s", "": break
        case "1m": e.source = source.minuteResolution
        case "auto": if let step, step >= 5 * 60_000 { e.source = source.minuteResolution }
        case let other: throw APIError.badData("invalid parameter \"max_source_resolution\": \"\(other)\" (raw, 1m or auto)")
        }
        if let recorded = rules?.recorded { e.source = LayeredSource(base: e.source, recorded: recorded) }
        // On a hub, `host=NAME` confines every selector to that host's series (a host's dashboard page); a
        // token confined to a datacenter, to its hosts.
        var hosts = p.identity.scopedHosts
        if let host = p["host"], !host.isEmpty { hosts = hosts.map { $0.intersection([host]) } ?? [host] }
        if let hosts { e.source = HostScopedSource(base: e.source, hosts: hosts) }
        return e
    }

    private func parse(_ p: Params) throws -> Expr {
        do { return try PromQLParser.parse(p["query"] ?? "") } catch { throw APIError.from(error, parameter: "query") }
    }

    /// `GET|POST /api/v1/query?query=&time=&timeout=`.
    func query(_ p: Params) throws -> Response {
        let t = try p.time("time", default: TwinTime.nowMillis())
        let expr = try parse(p)
        let result = try engine(p).instant(expr, at: t)
        return Self.success { Self.write(result, to: &$0) }
    }

    /// `GET|POST /api/v1/query_range?query=&start=&end=&step=&timeout=`.
    func queryRange(_ p: Params) throws -> Response {
        guard p["start"] != nil else { throw APIError.badData("invalid parameter \"start\": cannot parse \"\" to a valid timestamp") }
        guard p["end"] != nil else { throw APIError.badData("invalid parameter \"end\": cannot parse \"\" to a valid timestamp") }
        let start = try p.time("start", default: 0), end = try p.time("end", default: 0)
        guard let step = try p.duration("step") else { throw APIError.badData("invalid parameter \"step\": cannot parse \"\" to a valid duration") }
        // The bounds are judged before the query is parsed, as Prometheus does.
        let engine = try engine(p, step: step)
        try engine.checkRange(start: start, end: end, step: step)
        let result = try engine.range(try parse(p), start: start, end: end, step: step)
        return Self.success { Self.write(result, to: &$0) }
    }

    /// `{"resultType":...,"result":...}` exactly as Prometheus writes it.
    static func write(_ r: QueryResult, to j: inout JSONText) {
        j.raw("{\"resultType\":\"\(r.resultType)\",\"result\":")
        switch r {
        case .scalar(let t, let v): j.point(t, v)
        case .string(let t, let s):
            j.raw("[")
            j.timestamp(t)
            j.raw(",")
            j.string(s)
            j.raw("]")
        case .vector(let t, let samples):
            j.array(samples) { j, s in
                j.raw("{\"metric\":")
                j.labels(s.labels)
                j.raw(",\"value\":")
                j.point(t, s.value)
                j.raw("}")
            }
        case .matrix(let series):
            j.array(series) { j, s in
                j.raw("{\"metric\":")
                j.labels(s.labels)
                j.raw(",\"values\":")
                j.array(s.points) { j, p in j.point(p.0, p.1) }
                j.raw("}")
            }
        }
        j.raw("}")
    }

    /// The selectors of `match[]`, each a plain series selector.
    private func matchers(_ p: Params, required: Bool) throws -> [[Matcher]]? {
        let texts = p.all("match[]")
        if texts.isEmpty {
            if required { throw APIError.badData("no match[] parameter provided") }
            return nil
        }
        return try texts.map { text in
            let expr: Expr
            do { expr = try PromQLParser.parse(text) } catch { throw APIError.from(error, parameter: "match[]") }
            guard case .vector(let vs) = expr else { throw APIError.badData("invalid parameter \"match[]\": \(text) is not a series selector") }
            return vs.matchers
        }
    }

    /// The series (labels, id, type) matching any of the `match[]` selectors, or all series; with
    /// `start` and/or `end`, only those with samples in that range (stored rows overlapping it).
    private func matchingSeries(_ p: Params, required: Bool) throws -> [(id: Int64, labels: Labels, type: MetricType)] {
        let deadline = TwinTime.nowMillis() + engine.timeout
        let start = try p.time("start", default: .min), end = try p.time("end", default: .max)
        var out: [(id: Int64, labels: Labels, type: MetricType)]
        if let sets = try matchers(p, required: required) {
            var seen = Set<Int64>()
            out = []
            for m in sets { for s in try source.matching(m, deadline: deadline) where seen.insert(s.id).inserted { out.append(s) } }
        } else {
            out = try source.matching([], deadline: deadline)
        }
        if start != .min || end != .max {
            let present = try store.seriesWithSamples(from: start, to: end)
            out = out.filter { present.contains($0.id) }
        }
        return p.identity.scopedHosts == nil ? out : out.filter { p.identity.sees(host: $0.labels["host"]) }
    }

    /// `GET|POST /api/v1/series?match[]=...`: the label sets of matching series.
    func series(_ p: Params) throws -> Response {
        let found = try matchingSeries(p, required: true).sorted { Labels.promLess($0.labels, $1.labels) }
        return Self.success { j in j.array(found) { j, s in j.labels(s.labels) } }
    }

    /// `GET|POST /api/v1/labels`: every label name, sorted.
    func labels(_ p: Params) throws -> Response {
        var names = Set<String>()
        for s in try matchingSeries(p, required: false) { for l in s.labels.pairs { names.insert(l.name) } }
        let sorted = names.sorted()
        return Self.success { j in j.array(sorted) { j, n in j.string(n) } }
    }

    /// `GET /api/v1/label/<name>/values`: every value of one label, sorted.
    func labelValues(_ name: String, _ p: Params) throws -> Response {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 == 95 || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || ($0 >= 48 && $0 <= 57) }) else {
            throw APIError.badData("invalid label name: \"\(name)\"")
        }
        var values = Set<String>()
        for s in try matchingSeries(p, required: false) { if let v = s.labels[name] { values.insert(v) } }
        let sorted = values.sorted()
        return Self.success { j in j.array(sorted) { j, v in j.string(v) } }
    }

    /// `GET /api/v1/metadata?metric=&limit=`: type, help and (empty) unit per metric name. Help is the
    /// text imported with the family, else the collector's (``MetricHelp``), else empty.
    func metadata(_ p: Params) throws -> Response {
        let limit = Int(p["limit"] ?? "") ?? -1
        let only = p["metric"].flatMap { $0.isEmpty ? nil : $0 }
        var types: [String: MetricType] = [:]
        for s in try store.seriesCatalog() where only == nil || s.key.metric == only { types[s.key.metric] = s.type }
        var names = types.keys.sorted()
        if limit >= 0 { names = Array(names.prefix(limit)) }
        let imported = try store.metricHelp()
        return Self.success { j in
            j.raw("{")
            for (i, n) in names.enumerated() {
                if i > 0 { j.raw(",") }
                j.string(n)
                j.raw(":[{\"type\":")
                j.string(types[n]! == .untyped ? "unknown" : types[n]!.rawValue)
                j.raw(",\"help\":")
                j.string(imported[n] ?? MetricHelp.text(for: n) ?? "")
                j.raw(",\"unit\":\"\"}]")
            }
            j.raw("}")
        }
    }

    /// `GET|POST /api/v1/format_query?query=`: the expression as Prometheus' formatter writes it.
    func formatQuery(_ p: Params) throws -> Response {
        let text = PromQLPrinter.pretty(try parse(p))
        return Self.success { $0.string(text) }
    }

    /// `GET /api/v1/status/config`: the configuration as YAML. A twin has no scrape configuration; it
    /// shows the global settings its query engine applies.
    func statusConfig() -> Response {
        let yaml = "global:\n  scrape_interval: 1s\n  evaluation_interval: \(PromQLPrinter.duration(engine.defaultSubqueryStep))\n"
        return Self.success { j in j.raw("{\"yaml\":"); j.string(yaml); j.raw("}") }
    }

    /// `GET /api/v1/status/flags`: the query settings, under Prometheus' flag names.
    func statusFlags() -> Response {
        let flags = [("query.lookback-delta", PromQLPrinter.duration(engine.lookback)), ("query.max-samples", String(engine.maxSamples)),
                     ("query.timeout", PromQLPrinter.duration(engine.timeout)), ("storage.tsdb.path", store.dataDir)]
        return Self.success { j in
            j.raw("{")
            for (i, (k, v)) in flags.enumerated() {
                if i > 0 { j.raw(",") }
                j.string(k); j.raw(":"); j.string(v)
            }
            j.raw("}")
        }
    }

    /// `GET /api/v1/status/runtimeinfo`: Prometheus' fields, filled with what a twin knows.
    func runtimeInfo(_ p: Params) throws -> Response {
        let cwd = FileManager.default.currentDirectoryPath
        let threads = ProcessInfo.processInfo.activeProcessorCount
        return Self.success { j in
            j.raw("{\"startTime\":"); j.string(TwinTime.rfc3339(Self.startTime))
            j.raw(",\"CWD\":"); j.string(cwd)
            j.raw(",\"reloadConfigSuccess\":true,\"lastConfigTime\":"); j.string(TwinTime.rfc3339(Self.startTime))
            j.raw(",\"corruptionCount\":0,\"goroutineCount\":0,\"GOMAXPROCS\":\(threads),\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":\"see hosttwin status\"}")
        }
    }

    /// When this server started (ms).
    static let startTime = TwinTime.nowMillis()

    /// `GET /api/v1/status/tsdb`: series counts of the store, as Prometheus reports its head: totals, and
    /// the ten largest metric names, label names by distinct values and label pairs by series.
    func tsdbStatus(_ p: Params) throws -> Response {
        let deadline = TwinTime.nowMillis() + engine.timeout
        let all = try matchingSeries(p, required: false)
        guard TwinTime.nowMillis() <= deadline else { throw APIError.timeout("tsdb status timed out") }
        var byName: [String: Int] = [:], values: [String: Set<String>] = [:], pairs: [String: Int] = [:], bytes: [String: Int] = [:]
        for s in all {
            byName[s.labels[Labels.metricName] ?? "", default: 0] += 1
            for l in s.labels.pairs {
                if values[l.name, default: []].insert(l.value).inserted { bytes[l.name, default: 0] += l.value.utf8.count }
                pairs[l.name + "=" + l.value, default: 0] += 1
            }
        }
        let range = try store.sampleTimeRange()
        func top(_ d: [String: Int]) -> [(String, Int)] { Array(d.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(10)) }
        func list(_ j: inout JSONText, _ items: [(String, Int)]) {
            j.array(items) { j, it in j.raw("{\"name\":"); j.string(it.0); j.raw(",\"value\":\(it.1)}") }
        }
        return Self.success { j in
            j.raw("{\"headStats\":{\"numSeries\":\(all.count),\"numLabelPairs\":\(pairs.count),\"chunkCount\":0,\"minTime\":\(range?.0 ?? 0),\"maxTime\":\(range?.1 ?? 0)}")
            j.raw(",\"seriesCountByMetricName\":"); list(&j, top(byName))
            j.raw(",\"labelValueCountByLabelName\":"); list(&j, top(values.mapValues(\.count)))
            j.raw(",\"memoryInBytesByLabelName\":"); list(&j, top(bytes))
            j.raw(",\"seriesCountByLabelValuePair\":"); list(&j, top(pairs))
            j.raw("}")
        }
    }

    /// `GET /api/v1/status/buildinfo`. `version` is the Prometheus API level HostTwin implements (clients
    /// such as Grafana choose features by it); `application` names what answers.
    func buildInfo() -> Response {
        Self.success { j in
            j.raw("{\"version\":\"2.42.0\",\"revision\":\"hosttwin\",\"branch\":\"main\",\"buildUser\":\"hosttwin\",\"buildDate\":\"\",\"goVersion\":\"none\",\"application\":\"hosttwin \(TwinServerInfo.version)\"}")
        }
    }
}

/// The Prometheus API's JSON form of query results, for clients in the same process (the CLI).
public enum PrometheusJSON {
    /// `{"resultType":...,"result":...}`, the `data` member of a query response.
    public static func data(_ r: QueryResult) -> String {
        var j = JSONText(capacity: 1024)
        TwinAPI.write(r, to: &j)
        return j.out
    }
}

/// Facts about this build of the server.
public enum TwinServerInfo {
    public static let version = "0.1.0"
}
