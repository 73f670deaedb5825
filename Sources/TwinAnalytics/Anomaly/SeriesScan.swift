import TwinStorage

/// One stored series as the anomaly detection reads it: minute by minute (a gauge's mean, a counter's
/// rate per second) through a ``NoveltyDetector``. ``AnomalyMonitor`` keeps one per series and saves it
/// with the store, so a restart continues where it stopped and a scan starts from what was learned.
public struct SeriesScan: Sendable {
    public var detector = NoveltyDetector()
    /// The last minute fed (ms); nil before the first.
    public private(set) var through: Int64?
    /// A counter's previous minute (its time and last value), for the next rate.
    private var previous: (t: Int64, last: Double)?

    public init() {}

    /// Feeds the minute `p`; the value fed and its score, or nil when the minute gives no value (a
    /// counter's first, an empty one).
    public mutating func feed(_ p: RollupPoint, counter: Bool) -> (value: Double, score: Double)? {
        through = p.t
        let x: Double
        if counter {
            defer { previous = (p.t, p.last) }
            guard let q = previous, p.t > q.t else { return nil }
            let delta = p.last - q.last, seconds = Double(p.t - q.t) / 1000
            x = delta >= 0 ? delta / seconds : p.last / seconds // a reset: counting from 0
        } else {
            guard p.count > 0 else { return nil }
            x = p.sum / p.count
        }
        return (x, detector.score(x, at: p.t / 1000))
    }

    /// The scan's state as stored (``DetectorState``'s bytes).
    public var state: [UInt8] {
        var w = StateWriter()
        w.bytes.append(1)
        w.int(Int(through ?? .min))
        w.bytes.append(previous == nil ? 0 : 1)
        w.int(Int(previous?.t ?? 0))
        w.double(previous?.last ?? 0)
        return w.bytes + detector.state
    }

    /// A scan restored from ``state``; nil for bytes of another layout.
    public init?(state bytes: [UInt8]) {
        var r = StateReader(bytes: bytes)
        guard r.byte() == 1, let through = r.int(), let hasPrevious = r.byte(), let t = r.int(), let last = r.double(),
              let detector = NoveltyDetector(state: Array(bytes[r.offset...])) else { return nil }
        self.through = through == Int.min ? nil : Int64(through)
        previous = hasPrevious == 1 ? (Int64(t), last) : nil
        self.detector = detector
    }
}
