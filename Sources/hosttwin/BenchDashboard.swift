import Foundation
import Synchronization
import TwinCore
import TwinServer

/// The queries of a Grafana dashboard as Grafana sends them for one time range, and their timing against
/// HostTwin and Prometheus over HTTP: `hosttwin bench query --dashboard FILE`.
struct DashboardLoad {
    /// One panel target: its expression with the template and interval variables substituted.
    struct Query { var panel: String; var expr: String; var instant: Bool }

    /// Timing of one server for one range.
    struct ServerTiming: Encodable {
        /// The dashboard's queries one after another: the sum of each query's median, milliseconds.
        var dashboardMillis: Double
        var medianQueryMillis: Double
        var p90QueryMillis: Double
        /// Requests per second with `concurrency` clients cycling through the queries.
        var queriesPerSecond: Double
        var failed: Int
        /// Each query's median, in the order of the queries (not encoded).
        var medians: [Double] = []
        enum CodingKeys: String, CodingKey {
            case dashboardMillis = "dashboard_ms", medianQueryMillis = "median_query_ms", p90QueryMillis = "p90_query_ms"
            case queriesPerSecond = "queries_per_s", failed
        }
    }

    struct RangeResult: Encodable {
        var range: String
        var stepSeconds: Double
        var rateInterval: String
        var queries: Int
        var hosttwin: ServerTiming
        var prometheus: ServerTiming
        /// Prometheus' dashboard time over HostTwin's (above 1: HostTwin faster).
        var latencyRatio: Double
        /// HostTwin's queries per second over Prometheus' (above 1: HostTwin serves more).
        var throughputRatio: Double
        /// The queries where HostTwin's median trails Prometheus' the most (milliseconds), widest first.
        var widestGaps: [Gap]
        enum CodingKeys: String, CodingKey {
            case range, stepSeconds = "step_s", rateInterval = "rate_interval", queries, hosttwin, prometheus
            case latencyRatio = "latency_ratio_prometheus_to_hosttwin", throughputRatio = "throughput_ratio_hosttwin_to_prometheus"
            case widestGaps = "widest_gaps"
        }
    }

    /// One query's median on both servers.
    struct Gap: Encodable {
        var query: String
        var hosttwinMillis: Double
        var prometheusMillis: Double
        enum CodingKeys: String, CodingKey { case query, hosttwinMillis = "hosttwin_ms", prometheusMillis = "prometheus_ms" }
    }

    /// Every target's expression of a dashboard's JSON (rows' nested panels included, hidden ones too).
    static func targets(_ file: String) throws -> [(panel: String, expr: String, interval: String?, instant: Bool)] {
        guard let data = FileManager.default.contents(atPath: file),
              let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw CLIError("\(file) is not a dashboard's JSON") }
        var out: [(String, String, String?, Bool)] = []
        func walk(_ panels: [[String: Any]]) {
            for p in panels {
                for t in p["targets"] as? [[String: Any]] ?? [] {
                    guard let expr = t["expr"] as? String, !expr.isEmpty else { continue }
                    let instant = (t["instant"] as? Bool ?? false) && !(t["range"] as? Bool ?? false)
                    out.append((p["title"] as? String ?? "", expr, (t["interval"] as? String).flatMap { $0.isEmpty ? nil : $0 }, instant))
                }
                walk(p["panels"] as? [[String: Any]] ?? [])
            }
        }
        walk(root["panels"] as? [[String: Any]] ?? [])
        guard !out.isEmpty else { throw CLIError("\(file) has no PromQL targets") }
        return out
    }

    /// Grafana's `$__interval`: the range over 1,000 points rounded up to a round interval, at least the
    /// data source's scrape interval (or the target's own minimum). Milliseconds.
    static func interval(range: Int64, minimum: Int64) -> Int64 {
        let nice: [Int64] = [1, 10, 100, 1000, 5000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
                             1_200_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000]
        let raw = range / 1000
        return max(nice.first { $0 >= raw } ?? raw, minimum)
    }

    /// The queries for one range, with `$job`, `$node`, `$nodename` and Grafana's interval variables.
    static func queries(_ targets: [(panel: String, expr: String, interval: String?, instant: Bool)], range: Int64, scrape: Int64,
                        variables: [String: String]) throws -> (queries: [Query], step: Int64, rate: Int64) {
        let step = interval(range: range, minimum: scrape)
        var out: [Query] = []
        for t in targets {
            let minimum = try t.interval.map { try TwinTime.parseDuration($0) } ?? scrape
            let iv = interval(range: range, minimum: minimum)
            // Grafana's $__rate_interval: four scrape intervals, or one interval plus a scrape.
            let rate = max(iv + scrape, 4 * scrape)
            var vars = variables
            vars["__rate_interval"] = "\(rate / 1000)s"
            vars["__interval"] = "\(iv / 1000)s"
            vars["__range"] = "\(range / 1000)s"
            var expr = t.expr
            for name in vars.keys.sorted(by: { $0.count > $1.count }) {
                expr = expr.replacingOccurrences(of: "${\(name)}", with: vars[name]!).replacingOccurrences(of: "$" + name, with: vars[name]!)
            }
            out.append(Query(panel: t.panel, expr: expr, instant: t.instant))
        }
        return (out, step, max(step + scrape, 4 * scrape))
    }

    /// The `count` queries with the widest gap between HostTwin's median and Prometheus' (HostTwin slower).
    static func widestGaps(_ queries: [Query], _ h: ServerTiming, _ p: ServerTiming, count: Int) -> [Gap] {
        let gaps = queries.indices.map { Gap(query: queries[$0].expr, hosttwinMillis: h.medians[$0], prometheusMillis: p.medians[$0]) }
        return Array(gaps.sorted { $0.hosttwinMillis - $0.prometheusMillis > $1.hosttwinMillis - $1.prometheusMillis }.prefix(count))
    }

    /// The request path of a query over `[end - range, end]`.
    static func path(_ q: Query, end: Int64, range: Int64, step: Int64) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let e = q.expr.addingPercentEncoding(withAllowedCharacters: allowed)!
        if q.instant { return "/api/v1/query?query=\(e)&time=\(Double(end) / 1000)" }
        return "/api/v1/query_range?query=\(e)&start=\(Double(end - range) / 1000)&end=\(Double(end) / 1000)&step=\(Double(step) / 1000)"
    }

    /// A query as Grafana's Prometheus data source sends it: POST, form-encoded, on a kept-alive connection.
    static func post(_ connection: LoopbackHTTP.Connection, _ path: String) -> (status: Int, bodyBytes: Int)? {
        let q = path.firstIndex(of: "?") ?? path.endIndex
        return connection.send(method: "POST", path: String(path[..<q]), contentType: "application/x-www-form-urlencoded",
                               body: Array(path[q...].dropFirst().utf8))
    }

    /// Each path `runs` times on both servers, alternating, then `concurrency` clients against each for
    /// `seconds` (HostTwin first on even ranges, Prometheus first on odd ones).
    static func measure(paths: [String], hosttwin: Int, prometheus: Int, runs: Int, concurrency: Int, seconds: Double, hosttwinFirst: Bool) -> (ServerTiming, ServerTiming) {
        var times: [Int: [[Double]]] = [hosttwin: [], prometheus: []]
        var failed: [Int: Int] = [hosttwin: 0, prometheus: 0]
        let latencyClients = [hosttwin: LoopbackHTTP.Connection(port: hosttwin), prometheus: LoopbackHTTP.Connection(port: prometheus)]
        for path in paths {
            var per: [Int: [Double]] = [hosttwin: [], prometheus: []]
            for _ in 0..<runs {
                for port in hosttwinFirst ? [hosttwin, prometheus] : [prometheus, hosttwin] {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let r = post(latencyClients[port]!, path)
                    per[port]!.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                    if r?.status != 200 { failed[port]! += 1 }
                }
            }
            for port in [hosttwin, prometheus] { times[port]!.append(per[port]!.sorted()) }
        }
        func throughput(_ port: Int) -> Double {
            let done = Atomic<Int>(0)
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
            let t0 = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: concurrency) { client in
                var i = client * paths.count / max(concurrency, 1)
                let connection = LoopbackHTTP.Connection(port: port)
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    _ = post(connection, paths[i % paths.count])
                    done.add(1, ordering: .relaxed)
                    i += 1
                }
            }
            return Double(done.load(ordering: .relaxed)) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        var qps: [Int: Double] = [:]
        for port in hosttwinFirst ? [hosttwin, prometheus] : [prometheus, hosttwin] { qps[port] = throughput(port) }
        func timing(_ port: Int) -> ServerTiming {
            let medians = times[port]!.map { $0[$0.count / 2] }
            let sorted = medians.sorted()
            return ServerTiming(dashboardMillis: medians.reduce(0, +), medianQueryMillis: sorted[sorted.count / 2],
                                p90QueryMillis: sorted[min(sorted.count - 1, sorted.count * 9 / 10)], queriesPerSecond: qps[port]!, failed: failed[port]!,
                                medians: medians)
        }
        return (timing(hosttwin), timing(prometheus))
    }
}
