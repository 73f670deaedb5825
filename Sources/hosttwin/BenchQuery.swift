import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore
import TwinQuery
import TwinServer
import TwinStorage

/// `hosttwin bench query`: PromQL over a store (in process and over HTTP, beside Prometheus), and
/// state as of a time and as-of SQL over a week of generated state history.
struct BenchQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Query latency: PromQL range queries (vs Prometheus over HTTP), state --at and as-of SQL over 7 days of history.",
        discussion: """
        PromQL (needs --data-dir, e.g. a store `hosttwin run` has filled for an hour): the query over --range at --step \
        ending at the store's newest sample, --runs times in this process; with --hosttwin-port and --prometheus-port, \
        the same request timed against both servers over HTTP, alternating.

        Dashboard (--dashboard FILE, a Grafana dashboard's JSON such as Node Exporter Full; needs --data-dir, \
        --hosttwin-port and --prometheus-port): for each of --ranges ending at the store's newest sample, every panel \
        query as Grafana sends it ($job, $node, $__interval, $__rate_interval substituted) --runs times on both \
        servers alternating — the dashboard's time is the sum of the queries' medians — then --concurrency clients \
        cycling through the queries for --seconds against each: queries per second.

        State: a temporary store gets --state-days of history at 10 s ticks, starting from this host's real entities \
        (short-lived processes, attribute changes, ports and connections coming and going); then `state --at` (every \
        kind) and an as-of SQL query over processes are timed at several times in the week.
        """
    )
    @Option(help: ArgumentHelp("Store with this host's data for the PromQL part (skipped when absent).", valueName: "DIR")) var dataDir: String?
    @Option(help: ArgumentHelp("PromQL range query.", valueName: "EXPR")) var query = "rate(node_cpu_seconds_total[1m])"
    @Option(help: ArgumentHelp("Range of the query.", valueName: "DURATION")) var range = "1h"
    @Option(help: ArgumentHelp("Step of the query.", valueName: "DURATION")) var step = "15s"
    @Option(help: "Timed runs of each measurement.") var runs = 20
    @Option(help: ArgumentHelp("Port of a `hosttwin serve` of --data-dir on 127.0.0.1.", valueName: "PORT")) var hosttwinPort: Int?
    @Option(help: ArgumentHelp("Port of a Prometheus holding the same data on 127.0.0.1.", valueName: "PORT")) var prometheusPort: Int?
    @Option(help: ArgumentHelp("Grafana dashboard JSON whose queries to time on both servers.", valueName: "FILE")) var dashboard: String?
    @Option(help: ArgumentHelp("Dashboard time ranges, comma-separated.", valueName: "LIST")) var ranges = "1h,24h,7d"
    @Option(help: ArgumentHelp("The data source's scrape interval Grafana assumes.", valueName: "DURATION")) var scrapeInterval = "15s"
    @Option(help: "Concurrent clients of the dashboard throughput run.") var concurrency = 8
    @Option(help: ArgumentHelp("Seconds of each throughput run.", valueName: "S")) var seconds = 10.0
    @Option(help: ArgumentHelp("Days of generated state history (0 skips).", valueName: "N")) var stateDays = 7
    @Option(help: ArgumentHelp("Keep the generated state store in this directory (default: a temporary one, removed).", valueName: "DIR")) var stateDir: String?
    @OptionGroup var output: OutputOptions

    struct Timing: Encodable {
        var medianMillis: Double
        var p90Millis: Double
        var minMillis: Double
        var firstMillis: Double
        enum CodingKeys: String, CodingKey { case medianMillis = "median_ms", p90Millis = "p90_ms", minMillis = "min_ms", firstMillis = "first_ms" }
    }
    struct PromQL: Encodable {
        var query: String
        var start: String
        var end: String
        var stepSeconds: Double
        var series: Int
        var points: Int
        var inProcess: Timing
        var httpHostTwin: Timing?
        var httpPrometheus: Timing?
        var ratioPrometheusToHostTwin: Double?
        enum CodingKeys: String, CodingKey {
            case query, start, end, stepSeconds = "step_s", series, points, inProcess = "in_process", httpHostTwin = "http_hosttwin"
            case httpPrometheus = "http_prometheus", ratioPrometheusToHostTwin = "ratio_prometheus_to_hosttwin"
        }
    }
    struct State: Encodable {
        var days: Int
        var versions: Int64
        var generateSeconds: Double
        var entitiesAtEnd: Int
        var stateAt: [String: Timing]
        var sql: String
        var sqlAt: [String: Timing]
        enum CodingKeys: String, CodingKey {
            case days, versions, generateSeconds = "generate_s", entitiesAtEnd = "entities_at_end", stateAt = "state_at", sql, sqlAt = "sql_at"
        }
    }
    struct Result: Encodable { var promql: PromQL?; var dashboard: [DashboardLoad.RangeResult]?; var state: State? }

    static func time(runs: Int, _ body: () throws -> Void) rethrows -> Timing {
        var ms: [Double] = []
        for _ in 0...runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            ms.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let first = ms.removeFirst()
        ms.sort()
        return Timing(medianMillis: ms[ms.count / 2], p90Millis: ms[min(ms.count - 1, ms.count * 9 / 10)], minMillis: ms[0], firstMillis: first)
    }

    func run() throws {
        guard runs >= 1 else { throw CLIError("--runs must be at least 1") }
        var result = Result()
        if let dataDir { result.promql = try promql(dataDir) }
        if let dashboard { result.dashboard = try dashboardLoads(dashboard) }
        if stateDays > 0 { result.state = try state() }
        if output.json { try printJSON(result); return }
        if let p = result.promql {
            print("PromQL \(p.query) from \(p.start) to \(p.end) at \(p.stepSeconds) s: \(p.series) series, \(p.points) points")
            print(String(format: "  in process: median %.2f ms, p90 %.2f ms (first %.2f ms)", p.inProcess.medianMillis, p.inProcess.p90Millis, p.inProcess.firstMillis))
            if let h = p.httpHostTwin { print(String(format: "  HTTP HostTwin: median %.2f ms, p90 %.2f ms", h.medianMillis, h.p90Millis)) }
            if let h = p.httpPrometheus { print(String(format: "  HTTP Prometheus: median %.2f ms, p90 %.2f ms", h.medianMillis, h.p90Millis)) }
            if let r = p.ratioPrometheusToHostTwin { print(String(format: "  Prometheus / HostTwin (median): %.2f", r)) }
        }
        for d in result.dashboard ?? [] {
            print("dashboard over \(d.range) (step \(d.stepSeconds) s, $__rate_interval \(d.rateInterval)), \(d.queries) queries:")
            for (name, t) in [("HostTwin", d.hosttwin), ("Prometheus", d.prometheus)] {
                print(String(format: "  %@: dashboard %.1f ms (median query %.2f ms, p90 %.2f ms), %.0f queries/s with %d clients%@", name,
                             t.dashboardMillis, t.medianQueryMillis, t.p90QueryMillis, t.queriesPerSecond, concurrency, t.failed > 0 ? ", \(t.failed) failed" : ""))
            }
            print(String(format: "  latency Prometheus / HostTwin %.2f, throughput HostTwin / Prometheus %.2f", d.latencyRatio, d.throughputRatio))
            for g in d.widestGaps where g.hosttwinMillis > g.prometheusMillis {
                print(String(format: "  HostTwin %.2f ms vs %.2f ms: %@", g.hosttwinMillis, g.prometheusMillis, String(g.query.prefix(100))))
            }
        }
        if let s = result.state {
            print("state: \(s.days) days of generated history, \(s.versions) versions (\(String(format: "%.1f", s.generateSeconds)) s to generate), \(s.entitiesAtEnd) entities at the end")
            for (k, v) in s.stateAt.sorted(by: { $0.key < $1.key }) { print(String(format: "  state --at %@: median %.2f ms, p90 %.2f ms", k, v.medianMillis, v.p90Millis)) }
            print("  SQL: \(s.sql)")
            for (k, v) in s.sqlAt.sorted(by: { $0.key < $1.key }) { print(String(format: "  sql --at %@: median %.2f ms, p90 %.2f ms", k, v.medianMillis, v.p90Millis)) }
        }
    }

    private func promql(_ dir: String) throws -> PromQL {
        let store = try TwinStore.open(dataDir: dir, readOnly: true)
        guard let (_, newest) = try store.sampleTimeRange() else { throw CLIError("\(dir) holds no samples") }
        let rangeMs = try TwinTime.parseDuration(range), stepMs = try TwinTime.parseDuration(step)
        let end = newest / stepMs * stepMs, start = end - rangeMs
        let expr: Expr
        do { expr = try PromQLParser.parse(query) } catch { throw CLIError("\(error)") }
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        var answer: QueryResult?
        let inProcess = try Self.time(runs: runs) { answer = try engine.range(expr, start: start, end: end, step: stepMs) }
        var series = 0, points = 0
        if case .matrix(let m)? = answer { series = m.count; points = m.reduce(0) { $0 + $1.points.count } }
        var out = PromQL(query: query, start: TwinTime.rfc3339(start), end: TwinTime.rfc3339(end), stepSeconds: Double(stepMs) / 1000,
                         series: series, points: points, inProcess: inProcess)
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let path = "/api/v1/query_range?query=\(query.addingPercentEncoding(withAllowedCharacters: allowed)!)&start=\(Double(start) / 1000)&end=\(Double(end) / 1000)&step=\(Double(stepMs) / 1000)"
        // One kept-alive connection per server, as Grafana's data source talks to it.
        func http(_ port: Int) throws -> Timing {
            let connection = LoopbackHTTP.Connection(port: port, timeout: 30)
            return try Self.time(runs: runs) {
                guard connection.send(method: "GET", path: path)?.status == 200 else { throw CLIError("no answer from 127.0.0.1:\(port)\(path)") }
            }
        }
        if let p = hosttwinPort { out.httpHostTwin = try http(p) }
        if let p = prometheusPort { out.httpPrometheus = try http(p) }
        if let h = out.httpHostTwin, let p = out.httpPrometheus { out.ratioPrometheusToHostTwin = p.medianMillis / h.medianMillis }
        return out
    }

    private func dashboardLoads(_ file: String) throws -> [DashboardLoad.RangeResult] {
        guard let dataDir, let hosttwinPort, let prometheusPort else { throw CLIError("--dashboard needs --data-dir, --hosttwin-port and --prometheus-port") }
        let targets = try DashboardLoad.targets(file)
        let store = try TwinStore.open(dataDir: dataDir, readOnly: true)
        guard let (_, newest) = try store.sampleTimeRange() else { throw CLIError("\(dataDir) holds no samples") }
        let scrape = try TwinTime.parseDuration(scrapeInterval)
        // The template variables as Grafana resolves them (label_values of node_uname_info), from HostTwin.
        let uname = LoopbackHTTP.get(port: hosttwinPort, "/api/v1/series?match[]=node_uname_info", timeout: 30)?.body ?? ""
        func label(_ name: String) -> String {
            guard let r = uname.range(of: "\"\(name)\":\"") else { return "" }
            return String(uname[r.upperBound...].prefix { $0 != "\"" })
        }
        let variables = ["job": label("job"), "node": label("instance"), "instance": label("instance"), "nodename": label("nodename")]
        var out: [DashboardLoad.RangeResult] = []
        for (k, text) in ranges.split(separator: ",").enumerated() {
            let range = try TwinTime.parseDuration(String(text))
            let (queries, step, rate) = try DashboardLoad.queries(targets, range: range, scrape: scrape, variables: variables)
            let end = newest / step * step
            let paths = queries.map { DashboardLoad.path($0, end: end, range: range, step: step) }
            let (h, p) = DashboardLoad.measure(paths: paths, hosttwin: hosttwinPort, prometheus: prometheusPort, runs: runs,
                                               concurrency: concurrency, seconds: seconds, hosttwinFirst: k % 2 == 0)
            out.append(.init(range: String(text), stepSeconds: Double(step) / 1000, rateInterval: "\(rate / 1000)s", queries: queries.count,
                             hosttwin: h, prometheus: p, latencyRatio: p.dashboardMillis / h.dashboardMillis,
                             throughputRatio: h.queriesPerSecond / p.queriesPerSecond,
                             widestGaps: DashboardLoad.widestGaps(queries, h, p, count: 5)))
        }
        return out
    }

    private func state() throws -> State {
        let dir = stateDir ?? NSTemporaryDirectory() + "hosttwin-bench-state-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        defer { if stateDir == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let store = try TwinStore.open(dataDir: dir)
        let tick: Int64 = 10_000
        let end = TwinTime.nowMillis() / tick * tick
        let start = end - Int64(stateDays) * 86_400_000
        let t0 = Date()
        try StateHistory.generate(into: store, from: start, to: end, tick: tick)
        let generateSeconds = Date().timeIntervalSince(t0)
        let counts = try store.counts()
        let sql = "select name, pid, user, command from processes where state != 'zombie' order by pid"
        var stateAt: [String: Timing] = [:], sqlAt: [String: Timing] = [:]
        var entitiesAtEnd = 0
        for (label, at) in [("end", end - 1), ("-1d", end - 86_400_000), ("-3.5d", end - Int64(stateDays) * 43_200_000), ("start+1h", start + 3_600_000)] {
            stateAt[label] = try Self.time(runs: runs) { let v = try store.state(at: at); if label == "end" { entitiesAtEnd = v.count } }
            sqlAt[label] = try Self.time(runs: runs) { _ = try StateSQL(store: store).run(sql, at: at) }
        }
        return State(days: stateDays, versions: counts["versions"] ?? 0, generateSeconds: generateSeconds, entitiesAtEnd: entitiesAtEnd,
                     stateAt: stateAt, sql: sql, sqlAt: sqlAt)
    }
}

/// Generated state history for benchmarks: this host's real entities at the start, then churn at each
/// tick — short-lived processes (about 600 versions an hour, a busy server), long-lived processes
/// changing state, listening ports and connections opening and closing.
enum StateHistory {
    static func generate(into store: TwinStore, from start: Int64, to end: Int64, tick: Int64) throws {
        var rng = SeededRandom(seed: 42)
        let base = Sampler().tick(now: start, force: true)
        let writer = TwinWriter(store: store)
        try writer.begin(now: start, interval: tick)
        var first = Observation(timestamp: start)
        first.entities = base.entities
        _ = try writer.commit(first)
        let longLived = base.entities[.processes] ?? []
        guard let template = longLived.first else { throw CLIError("no processes seen on this host to start the history from") }
        var processes = longLived
        var shortLived: [(Entity, Int64)] = [] // entity, ends at
        var ports = base.entities[.listeningPorts] ?? []
        var connections = base.entities[.connections] ?? []
        var nextPid: Int64 = 100_000
        var t = start + tick
        while t < end {
            var obs = Observation(timestamp: t)
            // ~1.5 new short-lived processes per 10 s tick, living 10 s to 20 min.
            let spawn = Int.random(in: 0...3, using: &rng)
            for _ in 0..<spawn {
                nextPid += 1
                var e = longLived.randomElement(using: &rng) ?? template
                e.key = "\(nextPid)@\(t)"
                e.attributes["pid"] = .int(nextPid)
                e.attributes["start_time"] = .string(TwinTime.rfc3339(t))
                e.attributes["command"] = .string("job --run \(nextPid % 97) --input /data/batch-\(nextPid % 1000)")
                shortLived.append((e, t + tick * Int64.random(in: 1...120, using: &rng)))
            }
            shortLived.removeAll { $0.1 <= t }
            // A long-lived process changes state now and then.
            if Int.random(in: 0..<20, using: &rng) == 0, !processes.isEmpty {
                let i = Int.random(in: 0..<processes.count, using: &rng)
                processes[i].attributes["state"] = .string(processes[i].attributes["state"] == .string("sleeping") ? "running" : "sleeping")
            }
            obs.set(.processes, processes + shortLived.map(\.0))
            // A port opens or closes about every 30 minutes; connections come and go every few minutes.
            if Int.random(in: 0..<180, using: &rng) == 0 {
                if ports.count > 3, Bool.random(using: &rng) { ports.removeLast() } else if var p = ports.first {
                    let port = Int64.random(in: 20_000...60_000, using: &rng)
                    p.key = "tcp:127.0.0.1:\(port)"
                    p.attributes["port"] = .int(port)
                    ports.append(p)
                }
                obs.set(.listeningPorts, ports)
            }
            if Int.random(in: 0..<20, using: &rng) == 0 {
                if connections.count > 5, Bool.random(using: &rng) { connections.removeFirst() } else {
                    let port = Int64.random(in: 30_000...60_000, using: &rng)
                    connections.append(Entity(kind: .connections, key: "tcp:10.0.0.2:\(port)->10.0.0.9:443", attributes: ["remote_port": 443, "local_port": .int(port), "state": "ESTABLISHED"]))
                }
                obs.set(.connections, connections)
            }
            _ = try writer.commit(obs)
            t += tick
        }
        try writer.finish(now: end)
    }
}
