import TwinStorage

/// One stored series as the anomaly detection reads it: minute by minute (a gauge's mean, a counter's
/// rate per second) through a ``NoveltyDetector``. ``AnomalyMonitor`` keeps one per series and saves it
/// with the store, so a restart continues where it stopped and a scan starts from what was learned —
/// including the alerts of its last ``recordSpan``, so a scan of a recent window can start from a state
/// saved inside it instead of learning the history again.
public struct SeriesScan: Sendable {
    /// One minute that alerted.
    public struct Alert: Sendable, Equatable {
        public var t: Int64
        public var score: Double
        public var value: Double
    }
    /// How far back from ``through`` the alerts are kept (the default history of a scan).
    public static let recordSpan: Int64 = 6 * 3_600_000

    public var detector = NoveltyDetector()
    /// The last minute fed (ms); nil before the first.
    public private(set) var through: Int64?
    /// A counter's previous minute (its time and last value), for the next rate.
    private var previous: (t: Int64, last: Double)?
    /// Every alert of a minute at or after this time (ms) is in ``alerts``: the scan's first minute, or
    /// ``recordSpan`` before ``through`` once it has fed longer.
    public private(set) var recordedSince: Int64 = .min
    /// The alerts of the minutes since ``recordedSince``, oldest first.
    public private(set) var alerts: [Alert] = []

    public init() {}

    /// Feeds the minute `p`; the value fed and its score, or nil when the minute gives no value (a
    /// counter's first, an empty one).
    public mutating func feed(_ p: RollupPoint, counter: Bool) -> (value: Double, score: Double)? {
        through = p.t
        let x: Double
        if counter {
            defer { previous = (p.t, p.last) }
            guard let q = previous, p.t > q.t else { return nil }
            let delta = p.last - q.last, seconds = (Double(p.t) - Double(q.t)) / 1000
            x = delta >= 0 ? delta / seconds : p.last / seconds // a reset: counting from 0
        } else {
            guard p.count > 0 else { return nil }
            x = p.sum / p.count
        }
        let score = detector.score(x, at: p.t / 1000)
        if recordedSince < p.t &- Self.recordSpan {
            recordedSince = p.t &- Self.recordSpan
            if let first = alerts.first, first.t < recordedSince { alerts.removeAll { $0.t < recordedSince } }
        }
        if score >= NoveltyDetector.alertThreshold { alerts.append(Alert(t: p.t, score: score, value: x)) }
        return (x, score)
    }

    /// The scan's state as stored (``DetectorState``'s bytes): layout 3, with the alert record.
    public var state: [UInt8] { state(layout: 3) }

    /// ``state`` in layout 2 (fields of 8 bytes, the detector's format 2; for tests of what earlier builds
    /// saved) or 3 (the same fields as ``StateWriter``'s compact words, the detector's format 3).
    func state(layout: UInt8) -> [UInt8] {
        var w = StateWriter(compact: layout >= 3)
        w.bytes.append(layout)
        w.int(Int(through ?? .min))
        w.bytes.append(previous == nil ? 0 : 1)
        w.int(Int(previous?.t ?? 0))
        w.double(previous?.last ?? 0)
        w.int(Int(recordedSince))
        w.int(alerts.count)
        for a in alerts {
            w.int(Int(a.t))
            w.double(a.score)
            w.double(a.value)
        }
        return w.bytes + detector.state(format: layout >= 3 ? NoveltyDetector.stateFormat : 2)
    }

    /// A scan restored from ``state``; nil for bytes of another layout. A state of layout 1 (no alert
    /// record) records from the minute after its last.
    public init?(state bytes: [UInt8]) {
        var r = StateReader(bytes: bytes)
        guard let layout = r.byte(), (1...3).contains(layout) else { return nil }
        r.compact = layout >= 3
        guard let through = r.int(), let hasPrevious = r.byte(), let t = r.int(), let last = r.double() else { return nil }
        self.through = through == Int.min ? nil : Int64(through)
        previous = hasPrevious == 1 ? (Int64(t), last) : nil
        if layout >= 2 {
            guard let since = r.int(), let count = r.int(), count >= 0, count <= (bytes.count - r.offset) / 3 else { return nil }
            recordedSince = Int64(since)
            alerts.reserveCapacity(count)
            for _ in 0..<count {
                guard let t = r.int(), let score = r.double(), let value = r.double() else { return nil }
                alerts.append(Alert(t: Int64(t), score: score, value: value))
            }
        } else {
            recordedSince = through == Int.min ? .min : Int64(through) &+ 1
        }
        guard let detector = NoveltyDetector(state: Array(bytes[r.offset...])) else { return nil }
        self.detector = detector
    }
}
