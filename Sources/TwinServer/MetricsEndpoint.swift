import Foundation
import Hummingbird
import Metrics
import NIOCore
import Synchronization
import TwinCollectors
import TwinCore
import TwinStorage

extension TwinAPI {
    /// `GET /metrics`: the host's latest values in the Prometheus text format (OpenMetrics when the
    /// client asks for it), named as node_exporter names them, then HostTwin's own metrics. An existing
    /// Prometheus scrapes a HostTwin host as it would scrape node_exporter.
    func exposition(_ p: Params) -> Response {
        let openMetrics = p.accept.contains("application/openmetrics-text")
        updateStoreGauges()
        var out = ""
        if let latest = live?.latestSamples(seed: latestSeed()) {
            let help = { MetricHelp.text(for: $0) }
            // The stored copies of the loop's own counters: the registry below has them up to the moment.
            let samples = latest.types["hosttwin_ticks_total"] == nil ? latest.samples
                : latest.samples.filter { !Self.storedHealth.contains($0.key.metric) }
            out = openMetrics ? OpenMetricsText.render(samples, types: latest.types, help: help)
                : PrometheusText.render(samples, types: latest.types, help: help)
        }
        let own = metrics.render()
        out += openMetrics ? OpenMetricsText.fromPrometheus(own) + "# EOF\n" : own
        let type = openMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: out)))
    }

    private static let storedHealth = Set(SelfCollector.healthMetrics)

    /// At `/metrics`' first read, the store's latest value of every series stored within its lookback
    /// (``LiveTwin/stale``): the families collected less often than every tick too; none after.
    private func latestSeed() -> [LiveTwin.Seed] {
        guard let live, !live.keepsLatest, let at = live.lastTick,
              let stored = try? store.latestValues(at: at, lookback: LiveTwin.stale) else { return [] }
        return stored.latest.compactMap { id, value in
            stored.series[id].map { LiveTwin.Seed(id: id, key: $0.key, type: $0.type, time: value.0, value: value.1) }
        }
    }

    /// Store sizes and stream subscribers, read when scraped.
    private func updateStoreGauges() {
        let fm = FileManager.default
        func size(_ path: String) -> Int { ((try? fm.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0 }
        let db = TwinStore.databasePath(store.dataDir)
        let log = (try? fm.contentsOfDirectory(atPath: store.dataDir + "/wal"))?.reduce(0) { $0 + size(store.dataDir + "/wal/" + $1) } ?? 0
        Metrics.Gauge(label: "hosttwin_store_bytes", dimensions: [("part", "database")]).record(size(db))
        Metrics.Gauge(label: "hosttwin_store_bytes", dimensions: [("part", "database_wal")]).record(size(db + "-wal"))
        Metrics.Gauge(label: "hosttwin_store_bytes", dimensions: [("part", "head_log")]).record(log)
        if let live { Metrics.Gauge(label: "hosttwin_live_subscribers").record(live.subscriberCount) }
        // Ticks stored against ticks due, over the last hour and day (`hosttwin status` shows the gaps).
        let now = TwinTime.nowMillis()
        for (window, ms) in [("1h", Int64(3_600_000)), ("1d", Int64(86_400_000))] {
            if let c = try? store.completeness(from: now - ms, to: (try? store.lastTick()) ?? now) {
                Metrics.Gauge(label: "hosttwin_twin_completeness_ratio", dimensions: [("window", window)]).record(c.ratio)
            }
        }
    }
}

/// HTTP request counts and durations per route and status, with handles made once.
final class RequestMetrics: Sendable {
    private let handles = Mutex<[String: (Metrics.Counter, Metrics.Timer)]>([:])

    func record(route: String, status: Int, nanos: UInt64) {
        let key = route + "|" + String(status)
        let (counter, timer) = handles.withLock { h in
            if let x = h[key] { return x }
            let x = (Metrics.Counter(label: "hosttwin_http_requests_total", dimensions: [("route", route), ("code", String(status))]),
                     Metrics.Timer(label: "hosttwin_http_request_duration_seconds", dimensions: [("route", route), ("code", String(status))]))
            h[key] = x
            return x
        }
        counter.increment()
        timer.recordNanoseconds(Int64(clamping: nanos))
    }
}

/// The OpenMetrics 1.0 text format: counter families named without `_total`, `unknown` for untyped,
/// `# EOF` at the end (added by the caller).
enum OpenMetricsText {
    static func render(_ samples: [MetricSample], types: [String: MetricType], help: (String) -> String?) -> String {
        fromPrometheus(PrometheusText.render(samples, types: types, help: help))
    }

    /// Rewrites Prometheus text `# TYPE` lines to OpenMetrics: a counter `x_total` becomes family `x`;
    /// counters without the suffix become `unknown` (OpenMetrics requires it); `untyped` is `unknown`.
    static func fromPrometheus(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 64)
        // A HELP line names the family as its TYPE line does: held until the TYPE line says which.
        var help: Substring?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") { help = line; continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 {
                    let name = parts[2], type = parts[3]
                    let family = type == "counter" && name.hasSuffix("_total") ? name.dropLast(6) : name
                    if let h = help {
                        let words = h.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                        if words.count >= 3, words[2] == name { out += "# HELP \(family)" + (words.count == 4 ? " " + words[3] : "") + "\n" }
                        help = nil
                    }
                    if type == "counter" {
                        out += name.hasSuffix("_total") ? "# TYPE \(family) counter\n" : "# TYPE \(name) unknown\n"
                        continue
                    }
                    if type == "untyped" { out += "# TYPE \(name) unknown\n"; continue }
                }
            }
            if let h = help { out += h; out += "\n"; help = nil }
            out += line
            out += "\n"
        }
        return out
    }
}
