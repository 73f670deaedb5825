import TwinCore
import TwinStorage

/// Failover warnings: each host of a store whose anomaly rate, pressure, forecasts or error counters say
/// it is heading for trouble, with the evidence (`hosttwin fleet --warnings`, `/api/v1/fleet?warnings=1`).
public struct HostHealth: Sendable, Codable, Equatable {
    public var host: String
    /// The share of the host's series alerting in the last 10 minutes.
    public var anomalyRate: Double
    /// Early warnings of the host: sustained pressure, error counters rising, memory-leak suspects,
    /// filesystems filling within a day, processes restarting in a loop.
    public var warnings: [AnomalyReport.Warning]
    /// Whether the host is flagged: anomalous (5 % of its series alerting) or warned about.
    public var flagged: Bool { anomalyRate >= AnomalyScan.hostThreshold || !warnings.isEmpty }

    enum CodingKeys: String, CodingKey { case host, anomalyRate = "anomaly_rate", warnings, flagged }

    public init(host: String, anomalyRate: Double, warnings: [AnomalyReport.Warning]) {
        (self.host, self.anomalyRate, self.warnings) = (host, anomalyRate, warnings)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(host: try c.decode(String.self, forKey: .host), anomalyRate: try c.decode(Double.self, forKey: .anomalyRate),
                  warnings: try c.decode([AnomalyReport.Warning].self, forKey: .warnings))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(host, forKey: .host)
        try c.encode(anomalyRate, forKey: .anomalyRate)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(flagged, forKey: .flagged)
    }
}

public enum FleetHealth {
    /// Every host's health as of `now`: the anomaly scan of the last `window` (learning from `history`
    /// before it) grouped by the series' and entities' `host`; a single host's store is `localName`.
    public static func scan(store: TwinStore, now: Int64, window: Int64 = 3_600_000, history: Int64 = 86_400_000, localName: String = "local") throws -> [String: HostHealth] {
        let report = try AnomalyScan.run(store: store, to: now, window: window, history: history)
        var out: [String: HostHealth] = [:]
        for s in try store.seriesCatalog() {
            let host = s.key.labels["host"] ?? localName
            if out[host] == nil { out[host] = HostHealth(host: host, anomalyRate: 0, warnings: []) }
        }
        // The rate's denominator: the host's series live in the window, not every series it ever had.
        var series: [String: Int] = [:]
        for (host, n) in report.liveSeriesByHost { series[host.isEmpty ? localName : host] = n }
        let recent = TwinTime.rfc3339(now - 10 * AnomalyScan.step)
        var alerting: [String: Int] = [:]
        for a in report.alerts where a.time >= recent { alerting[a.host ?? localName, default: 0] += 1 }
        for (host, n) in alerting { out[host]?.anomalyRate = Double(n) / Double(max(series[host] ?? 1, 1)) }
        for w in report.warnings { out[w.host ?? localName, default: HostHealth(host: w.host ?? localName, anomalyRate: 0, warnings: [])].warnings.append(w) }
        return out
    }
}
