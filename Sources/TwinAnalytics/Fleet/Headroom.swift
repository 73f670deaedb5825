import TwinCore
import TwinQuery

/// Where to place work: each host's spare CPU and memory over a horizon, from forecasts of its busy
/// cores and available memory, ranked for a job's needs (`hosttwin headroom`).
public enum Headroom {
    /// One host's forecast capacity.
    public struct Host: Sendable, Codable, Equatable {
        public var host: String
        public var cores: Double
        /// The highest busy cores the forecast expects within the horizon (upper 80 % bound).
        public var peakBusyCores: Double
        /// The lowest available memory the forecast expects within the horizon (lower 80 % bound).
        public var minAvailableBytes: Double
        /// How far into the horizon the 80 % bounds were used (ms): as far ahead as the history reaches
        /// back; beyond it, the expected path.
        public var boundsCover: Int64
        public var spareCores: Double { cores - peakBusyCores }
        public var spareBytes: Double { minAvailableBytes }

        public init(host: String, cores: Double, peakBusyCores: Double, minAvailableBytes: Double, boundsCover: Int64 = .max) {
            (self.host, self.cores, self.peakBusyCores, self.minAvailableBytes, self.boundsCover) = (host, cores, peakBusyCores, minAvailableBytes, boundsCover)
        }
    }

    /// A host ranked for a job.
    public struct Placement: Sendable, Codable, Equatable {
        public var host: String
        public var fits: Bool
        /// How many times the job fits in the spare capacity (the smaller of CPU and memory).
        public var score: Double
        public var spareCores: Double
        public var spareBytes: Double
        public var cores: Double
        public var peakBusyCores: Double
        /// Seconds of the horizon over which the 80 % bounds were used (the rest: the expected path).
        public var boundsCoverSeconds: Int64

        enum CodingKeys: String, CodingKey {
            case host, fits, score, spareCores = "spare_cores", spareBytes = "spare_bytes", cores, peakBusyCores = "peak_busy_cores"
            case boundsCoverSeconds = "bounds_cover_seconds"
        }
    }

    /// Hosts ranked for a job needing `cpu` cores and `memory` bytes: those it fits on first, by how many
    /// times it fits (the most spare first), then the rest the same way.
    public static func rank(_ hosts: [Host], cpu: Double, memory: Double) -> [Placement] {
        hosts.map { h in
            let byCPU = cpu > 0 ? h.spareCores / cpu : .infinity
            let byMemory = memory > 0 ? h.spareBytes / memory : .infinity
            let score = min(byCPU, byMemory)
            return Placement(host: h.host, fits: score >= 1, score: score.isFinite ? score : 0, spareCores: h.spareCores, spareBytes: h.spareBytes,
                             cores: h.cores, peakBusyCores: h.peakBusyCores, boundsCoverSeconds: h.boundsCover / 1000)
        }.sorted { ($0.fits ? 1 : 0, $0.score, $1.host) > ($1.fits ? 1 : 0, $1.score, $0.host) }
    }

    /// Each host's capacity from the store behind `engine`: cores counted from node_cpu_seconds_total,
    /// busy cores and available memory forecast `horizon` ahead from `history`. Series are grouped by
    /// their `host` label (a hub); a single host's store is `localName`.
    ///
    /// The 80 % bounds are used only as far ahead as a host's history reaches back, the expected path
    /// beyond: minutes of history widen the bounds over a day's horizon until every host seemed to have
    /// no memory to spare, while a steady trend (memory falling for hours) still counts in full.
    public static func hosts(engine: PromQLEngine, now: Int64, history: Int64, horizon: Int64, localName: String) throws -> [Host] {
        func host(_ l: Labels) -> String { l["host"] ?? localName }
        var cores: [String: Double] = [:]
        if case .vector(_, let v) = try engine.instant(try PromQLParser.parse(#"count by (host) (node_cpu_seconds_total{mode="idle"})"#), at: now) {
            for s in v { cores[host(s.labels)] = s.value }
        }
        var cover: [String: Int64] = [:]
        /// The steps of `f` whose bounds count, noting how far they reach for its host.
        func bounded(_ f: SeriesForecast) -> ArraySlice<ForecastPoint> {
            let n = min(f.points.count, Int(max(1, (f.last.t - f.first) / f.step)))
            cover[host(f.labels)] = min(cover[host(f.labels)] ?? .max, n == f.points.count ? .max : Int64(n) * f.step)
            return f.points.prefix(n)
        }
        var busy: [String: Double] = [:]
        for f in try QueryForecaster.forecast(engine: engine, expr: try PromQLParser.parse(#"sum by (host) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[5m]))"#),
                                              now: now, history: history, horizon: horizon) {
            busy[host(f.labels)] = max(f.last.value, f.points.map(\.mean).max() ?? f.last.value, bounded(f).map(\.hi80).max() ?? f.last.value)
        }
        var available: [String: Double] = [:]
        for f in try QueryForecaster.forecast(engine: engine, expr: try PromQLParser.parse("sum by (host) (node_memory_MemAvailable_bytes)"),
                                              now: now, history: history, horizon: horizon) {
            available[host(f.labels)] = max(0, min(f.last.value, f.points.map(\.mean).min() ?? f.last.value, bounded(f).map(\.lo80).min() ?? f.last.value))
        }
        return cores.keys.sorted().compactMap { h in
            guard let c = cores[h], let m = available[h] else { return nil }
            return Host(host: h, cores: c, peakBusyCores: min(c, busy[h] ?? 0), minAvailableBytes: m, boundsCover: cover[h] ?? .max)
        }
    }
}
