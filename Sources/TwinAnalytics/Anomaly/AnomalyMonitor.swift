import TwinCore
import TwinStorage

/// Keeps every series' anomaly detector up to date with the store and saves it there: each pass feeds
/// the minutes stored since the series' saved state (``SeriesScan``) and saves the new states in one
/// transaction. A restart loads them and goes on: nothing is relearned. `run` and `serve` run a pass every
/// few minutes (``TwinRuntime``'s `AnomalyMonitorService`) and one at shutdown.
public struct AnomalyMonitor: Sendable {
    public let store: TwinStore
    /// How far back a series without a saved state starts learning.
    public var history: Int64
    /// Minutes younger than this are left for the next pass (they may still be filling).
    public var settle: Int64 = 2 * AnomalyScan.step
    /// States of series fed last this long before the newest state are retired: an exited process's
    /// series, a removed disk's. Measured from the newest state, not the clock, so a host that was off
    /// for a night keeps what it learned. An hour: a host whose processes come and go holds detectors
    /// for the last hour's, not the last week's (about 120 bytes each until a day is learned, 0.9 KB after;
    /// docs/OBSERVATION.md, "Footprint"). A retired series is remembered in a few bytes
    /// (``RetiredDetectors``), found silent up to the minute each pass fed the others to: no pass
    /// reads and learns its history again only to drop it (before, with 3,500 exited processes' series,
    /// every pass and every minute's anomaly rule did). A series that comes back learns from its return.
    public static let retireAfter: Int64 = 3_600_000

    public init(store: TwinStore, history: Int64 = 6 * 3_600_000) {
        self.store = store
        self.history = history
    }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        public var seriesFed: Int
        public var minutesFed: Int
        public var alerts: Int
        /// Series the pass before found silent that had minutes again: their saved states were read one
        /// by one (those it fed are read at the start, the silent ones' not at all).
        public var returned: Int
    }

    /// Feeds every series the complete minutes up to `now - settle` and saves the states.
    @discardableResult
    public func advance(now: Int64) throws -> Pass {
        let step = AnomalyScan.step
        let end = (now - settle) / step * step - step
        let retired = try store.retiredDetectors()
        // The states the last pass fed are read whole; the others (ended series') only if they have minutes.
        let (states, older) = try store.detectorStates(fedSince: retired?.through ?? .min)
        var saved: [DetectorState] = []
        var pass = Pass(seriesFed: 0, minutesFed: 0, alerts: 0, returned: 0)
        let catalog = try store.seriesCatalog()
        // Whole minutes: the last one's samples run to end + step - 1.
        // A series without a state starts a fresh scan, made only when it has minutes to feed (most retired
        // series have none: thousands of exited processes' on a busy host).
        try AnomalyScan.minutes(store: store, ids: catalog.map(\.id), to: end + step - 1, prepare: { k -> (from: Int64, value: AnomalyScan.Resume) in
            let id = catalog[k].id
            if let through = older[id] {
                return (AnomalyScan.Resume.start(after: through, of: catalog[k], silentThrough: retired?.through, limit: end), .saved(series: id, through: through))
            }
            guard let st = states[id], let restored = SeriesScan(state: st.bytes) else {
                if let retired, retired.series.contains(id) { return (retired.through + step, .fresh) }
                return ((now - history) / step * step, .fresh)
            }
            return (st.through + step, .restored(restored))
        }) { k, resume, read in
            let s = catalog[k]
            let points = read.filter { $0.t <= end }
            guard !points.isEmpty else { return }
            if case .saved = resume { pass.returned += 1 }
            var scan = resume.scan(store) ?? SeriesScan()
            for p in points {
                if let (_, score) = scan.feed(p, counter: s.type == .counter), score >= NoveltyDetector.alertThreshold { pass.alerts += 1 }
            }
            pass.seriesFed += 1
            pass.minutesFed += points.count
            saved.append(DetectorState(series: s.id, through: scan.through ?? end, bytes: scan.state))
        }
        try store.saveDetectorStates(saved)
        let newest = max(saved.map(\.through).max() ?? .min, states.values.map(\.through).max() ?? .min, older.values.max() ?? .min)
        if newest > .min { try store.retireDetectorStates(before: newest - Self.retireAfter, silentThrough: end) }
        try store.pruneDetectorStates(before: .min) // deleted series'
        return pass
    }
}
