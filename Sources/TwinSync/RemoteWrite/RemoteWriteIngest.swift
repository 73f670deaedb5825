import TwinCore
import TwinStorage

/// What applying one remote_write request at a hub did.
public struct RemoteWriteResult: Sendable, Equatable {
    /// Samples stored.
    public var samples = 0
    /// Samples not after their series' newest (sent again after a retry, or out of order): not stored.
    public var notNewer = 0
    /// Series refused: invalid, or without the label that names their host.
    public var refused = 0
    /// Why, for the first few.
    public var refusals: [String] = []
    /// The hosts the request's series belong to.
    public var hosts: [String] = []
}

extension HubIngest {
    /// The host a remote-written series belongs to: the value of `label` (`instance` by default), without
    /// a trailing `:PORT` (`node1:9100` → `node1`, `[::1]:9100` → `::1`), so every exporter of a host
    /// joins that host's twin. Nil when the series lacks the label.
    public static func remoteWriteHost(_ labels: [Label], label: String) -> String? {
        guard let value = labels.first(where: { $0.name == label })?.value, !value.isEmpty else { return nil }
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
            return String(value[value.index(after: value.startIndex)..<close])
        }
        if let colon = value.lastIndex(of: ":"), value.firstIndex(of: ":") == colon,
           !value[value.index(after: colon)...].isEmpty, value[value.index(after: colon)...].allSatisfy(\.isASCIIDigit) {
            return String(value[..<colon])
        }
        return value
    }

    /// Applies a decoded remote_write request: each series keyed as its host's (a `host` label from
    /// `hostLabel`, its own labels kept, `job` and `instance` among them), its samples through the bulk path,
    /// and each host recorded as a fleet host with the time of its newest sample (the host has no agent:
    /// epoch 0, no ticks). Samples not after their series' newest are skipped, so a request sent again is
    /// harmless. `types` remembers the metric types of earlier requests' metadata (Prometheus sends metadata
    /// apart from samples); a series first seen without one is untyped.
    public func applyRemoteWrite(_ request: RemoteWriteCodec.Request, hostLabel: String, types: inout [String: MetricType],
                                 datacenter: String?) throws -> RemoteWriteResult {
        types.merge(request.types) { _, new in new }
        var result = RemoteWriteResult(refused: request.refused, refusals: request.refusals)
        var keys: [(SeriesKey, MetricType)] = []
        var kept: [Int] = []
        var newest: [String: Int64] = [:]
        keys.reserveCapacity(request.series.count)
        for (i, s) in request.series.enumerated() {
            guard let host = Self.remoteWriteHost(s.labels, label: hostLabel) else {
                result.refused += 1
                if result.refusals.count < 10 { result.refusals.append("\(s.metric) has no \(hostLabel) label to name its host") }
                continue
            }
            keys.append((Self.hostKey(SeriesKey(s.metric, Labels(sorted: s.labels)), host: host), MetricType.of(series: s.metric, families: types)))
            kept.append(i)
            if let last = s.t.last { newest[host] = max(newest[host] ?? .min, last) }
        }
        let ids = try writer.seriesIDs(for: keys)
        var samples: [(Int64, Int64, Double)] = []
        samples.reserveCapacity(kept.reduce(0) { $0 + request.series[$1].t.count })
        for (id, i) in zip(ids, kept) {
            let s = request.series[i]
            for (t, v) in zip(s.t, s.v) { samples.append((id, t, v)) }
        }
        let batch = try writer.append(batch: samples)
        result.samples = batch.accepted
        result.notNewer = batch.rejected
        try writer.cutAtHeadWindow()
        try writer.store.recordRemoteWrite(newest: newest, datacenter: datacenter)
        result.hosts = newest.keys.sorted()
        return result
    }
}
