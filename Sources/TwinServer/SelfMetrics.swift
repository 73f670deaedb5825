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
                                                   // 0.5 s and 1.5 s: the fleet's freshness targets at a datacenter and the global hub.
                                                   .milliseconds(500), .seconds(1), .milliseconds(1500), .seconds(5)]
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
