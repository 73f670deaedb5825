import Dispatch
import Logging
import Metrics
import ServiceLifecycle
import TwinAnalytics
import TwinCore
import TwinStorage

/// Runs an ``AnomalyMonitor`` pass every `interval` and once more at shutdown, so the detectors' state
/// saved with the store is never more than an interval behind.
public struct AnomalyMonitorService: Service {
    let monitor: AnomalyMonitor
    let interval: Duration
    let logger: Logger
    /// The cost of the passes, on `/metrics`: passes and the wall time they took.
    private let passes = Metrics.Counter(label: "hosttwin_anomaly_passes_total")
    private let passSeconds = FloatingPointCounter(label: "hosttwin_anomaly_pass_seconds_total")

    public init(store: TwinStore, interval: Duration = .seconds(300), logger: Logger) {
        monitor = AnomalyMonitor(store: store)
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // The first pass waits an interval: start-up (and a hub's first pushes) come first.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            pass()
        }
    }

    func pass() {
        let started = DispatchTime.now().uptimeNanoseconds
        let outcome = Result { try monitor.advance(now: TwinTime.nowMillis()) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        passes.increment()
        passSeconds.increment(by: seconds)
        switch outcome {
        case .success(let p):
            logger.debug("anomaly detectors: \(p.seriesFed) series fed \(p.minutesFed) minutes, \(p.alerts) alerts, in \(Int(seconds * 1000)) ms")
        case .failure(let error):
            logger.warning("anomaly detectors not saved: \(error)")
        }
    }
}
