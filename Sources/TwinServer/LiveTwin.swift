import Synchronization
import TwinCore

/// The latest observations, shared by the collection thread (writer) and the HTTP server (readers)
/// under a lock. It keeps the last two ticks' samples as they are (no per-tick work) and builds
/// summaries on request.
public final class LiveTwin: Sendable {
    struct State {
        var host: [String: AttributeValue] = [:]
        var health: [CollectorHealth] = []
        var lastTick: Int64?
        var ticks: Int64 = 0
        var current: (Int64, [MetricSample])?
        var prior: (Int64, [MetricSample])?
    }

    private let state = Mutex(State())
    public let startedAt: Int64

    public init(startedAt: Int64 = TwinTime.nowMillis()) { self.startedAt = startedAt }

    /// Records one committed tick.
    public func update(samples: [MetricSample], host: [String: AttributeValue]?, health: [CollectorHealth], tick: Int64) {
        state.withLock { s in
            s.prior = s.current
            s.current = (tick, samples)
            if let host { s.host = host }
            s.health = health
            s.lastTick = tick
            s.ticks += 1
        }
    }

    public var host: [String: AttributeValue] { state.withLock { $0.host } }
    public var health: [CollectorHealth] { state.withLock { $0.health } }
    public var lastTick: Int64? { state.withLock { $0.lastTick } }
    public var ticks: Int64 { state.withLock { $0.ticks } }

    /// The summary of the latest tick (rates against the tick before), or nil before the first tick.
    public func summary() -> HostSummary? {
        let (current, prior) = state.withLock { ($0.current, $0.prior) }
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
}
