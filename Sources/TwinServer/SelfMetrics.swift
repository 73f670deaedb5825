import Foundation
import Metrics
import Prometheus
import Synchronization
import TwinCore

/// HostTwin's own metrics: instrumented with the swift-metrics API (so libraries report through the
/// same system), kept in a Prometheus registry and exposed on `/metrics` after the host's series.
public final class SelfMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry

    private static let shared = Mutex<SelfMetrics?>(nil)

    private init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Ticks and queries take microseconds to milliseconds; the default buckets start at 5 ms.
        factory.defaultDurationHistogramBuckets = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                                   .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                                   .seconds(1), .seconds(5)]
        MetricsSystem.bootstrap(factory)
    }

    /// The process's metrics system, bootstrapped on first use (swift-metrics allows one bootstrap).
    public static func bootstrap() -> SelfMetrics {
        shared.withLock { s in
            if let s { return s }
            let m = SelfMetrics()
            s = m
            return m
        }
    }

    /// The registry's text exposition.
    public func render() -> String { registry.emitToString() }
}

/// The collection loop's metrics, with handles made once (a lookup per tick would cost more than the
/// increments).
public final class CollectionMetrics: @unchecked Sendable { // used by the collection thread only
    private let ticks = Metrics.Counter(label: "hosttwin_ticks_total")
    private let failedTicks = Metrics.Counter(label: "hosttwin_tick_failures_total")
    private let tickDuration = Metrics.Timer(label: "hosttwin_tick_duration_seconds")
    private let sealBacklog = Metrics.Gauge(label: "hosttwin_seal_queue_depth")
    private var collectorSeconds: [String: FloatingPointCounter] = [:]
    private var collectorErrors: [String: Metrics.Counter] = [:]

    public init() {}

    /// Records one tick: its duration, each collector's time and errors, the sealer's backlog.
    public func tick(durationNanos: Int64, health: [CollectorHealth], sealQueue: Int, stored: Bool) {
        if stored { ticks.increment() } else { failedTicks.increment() }
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
