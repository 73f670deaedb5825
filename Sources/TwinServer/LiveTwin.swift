import TwinCore

/// The latest observations, shared by the collection loop (writer) and the HTTP server (readers).
/// It keeps the last two ticks' samples as they are (no per-tick work) and builds summaries on request.
public actor LiveTwin {
    public private(set) var host: [String: AttributeValue] = [:]
    public private(set) var health: [CollectorHealth] = []
    public private(set) var lastTick: Int64?
    public private(set) var ticks: Int64 = 0
    public let startedAt: Int64
    private var current: (Int64, [MetricSample])?
    private var prior: (Int64, [MetricSample])?

    public init(startedAt: Int64 = TwinTime.nowMillis()) { self.startedAt = startedAt }

    /// Records one committed tick.
    public func update(samples: [MetricSample], host: [String: AttributeValue]?, health: [CollectorHealth], tick: Int64) {
        prior = current
        current = (tick, samples)
        if let host { self.host = host }
        self.health = health
        lastTick = tick
        ticks += 1
    }

    /// The summary of the latest tick (rates against the tick before), or nil before the first tick.
    public func summary() -> HostSummary? {
        guard let current else { return nil }
        func map(_ x: (Int64, [MetricSample])?) -> [SeriesKey: (Int64, Double)] {
            guard let (t, s) = x else { return [:] }
            var m: [SeriesKey: (Int64, Double)] = [:]
            m.reserveCapacity(s.count)
            for v in s { m[v.key] = (t, v.value) }
            return m
        }
        var latest = map(prior)
        // Series collected less often than every tick keep their last value.
        for (k, v) in map(current) { latest[k] = v }
        return HostSummary(latest: latest, previous: map(prior))
    }

    /// The latest tick's samples (for `/metrics`-style exposition).
    public func latestSamples() -> [MetricSample] { current?.1 ?? [] }
}
