import CoreMetrics
import Metrics
import TwinCollectors
import TwinCore

/// The collection loop's metrics, with handles made once (a lookup per tick would cost more than the
/// increments).
public final class CollectionMetrics: @unchecked Sendable { // used by the collection thread only
    private let ticks = Metrics.Counter(label: "hosttwin_ticks_total")
    private let failedTicks = Metrics.Counter(label: "hosttwin_tick_failures_total")
    private let tickDuration = Metrics.Timer(label: "hosttwin_tick_duration_seconds")
    private let sealBacklog = Metrics.Gauge(label: "hosttwin_seal_queue_depth")
    private let changeRefreshes = Metrics.Counter(label: "hosttwin_change_refreshes_total")
    private let changeSkips = Metrics.Counter(label: "hosttwin_change_refreshes_skipped_total")
    private let skippedTicks = Metrics.Counter(label: "hosttwin_ticks_skipped_total")
    /// From the moment stored state stands for (a tick's time, a change-driven refresh's) to its commit.
    private let updateLatency = Metrics.Timer(label: "hosttwin_twin_update_latency_seconds")
    private var collectorSeconds: [String: FloatingPointCounter] = [:]
    private var collectorErrors: [String: Metrics.Counter] = [:]
    /// The counters above as plain numbers, stored with the `self` collector's samples (``store(into:)``).
    private var totals = (ticks: 0.0, failures: 0.0, skipped: 0.0, refreshes: 0.0, refreshesSkipped: 0.0, latencySeconds: 0.0, latencies: 0.0)

    public init() {}

    /// Adds the twin's own health counters to a tick's samples (at the `self` collector's runs), so they are
    /// in its history, its PromQL and its rules, not only on `/metrics` (``SelfCollector/healthMetrics``).
    public func store(into obs: inout Observation) {
        let t = totals
        for (name, value) in zip(SelfCollector.healthMetrics, [t.ticks, t.failures, t.skipped, t.refreshes, t.refreshesSkipped, t.latencySeconds, t.latencies]) {
            obs.counter(name, .empty, value)
        }
    }

    private func latency(_ millis: Int64) {
        updateLatency.recordMilliseconds(millis)
        totals.latencySeconds += Double(millis) / 1000
        totals.latencies += 1
    }

    /// Records one change-driven commit between ticks, `lagMillis` after the moment it stands for.
    public func changeCommitted(lagMillis: Int64) {
        changeRefreshes.increment()
        totals.refreshes += 1
        latency(lagMillis)
    }

    /// Records a change-driven refresh the CPU budget held back (the tick records the change).
    public func changeSkipped() {
        changeSkips.increment()
        totals.refreshesSkipped += 1
    }

    /// Records tick slots the loop passed over because it fell behind (a gap of "not stored" ticks).
    public func ticksSkipped(_ n: Int) {
        skippedTicks.increment(by: Int64(n))
        totals.skipped += Double(n)
    }

    /// Records one tick: its duration, each collector's time and errors, the sealer's backlog, and (when
    /// stored) how long after the tick's time it was committed.
    public func tick(durationNanos: Int64, health: [CollectorHealth], sealQueue: Int, stored: Bool, lagMillis: Int64) {
        if stored {
            ticks.increment()
            totals.ticks += 1
            latency(lagMillis)
        } else {
            failedTicks.increment()
            totals.failures += 1
        }
        tickDuration.recordNanoseconds(durationNanos)
        sealBacklog.record(sealQueue)
        for h in health where h.status != .disabled {
            let c = collectorSeconds[h.collector] ?? {
                let c = FloatingPointCounter(label: "hosttwin_collector_duration_seconds_total", dimensions: [("collector", h.collector)])
                collectorSeconds[h.collector] = c
                return c
            }()
            c.increment(by: Double(h.durationMicros) / 1e6)
            if h.status == .error {
                (collectorErrors[h.collector] ?? {
                    let c = Metrics.Counter(label: "hosttwin_collector_errors_total", dimensions: [("collector", h.collector)])
                    collectorErrors[h.collector] = c
                    return c
                }()).increment()
            }
        }
    }
}
