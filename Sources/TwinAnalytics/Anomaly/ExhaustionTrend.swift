/// Whether a shrinking resource (free bytes of a filesystem, available memory) is running out *now*,
/// from its last few minutes of samples alone: no learning history, so it works on a twin of any age.
///
/// A least-squares line through the samples of the last 30 s, 1, 2 or 5 minutes (the shortest that shows a
/// clear trend: a fill that started seconds ago shows in the short window, a slow one in the long); the
/// trend is clear when the line falls, explains most of the movement (R² ≥ 0.8) over at least 5 samples
/// and 20 s, and the fall is at least 1 % of the capacity. The resource is then expected to run out where
/// the line, continued from the last sample, reaches zero — if that is within ten times the span of the
/// samples it was fitted to. A resource at or below 0.5 % of its capacity is reported as exhausted
/// whatever its trend.
public enum ExhaustionTrend {
    /// What the samples say.
    public struct Finding: Sendable, Equatable {
        /// When the resource runs out at the current rate (ms); the last sample's time when it already has.
        public var exhaustedAt: Int64
        /// Change per second (negative: falling; 0 when exhausted without a clear trend).
        public var ratePerSecond: Double
        /// First and last sample of the window (ms, value).
        public var from: Sample
        public var to: Sample
        /// At or below 0.5 % of the capacity already.
        public var exhausted: Bool
    }

    /// A timestamped value (ms).
    public struct Sample: Sendable, Equatable {
        public var t: Int64
        public var value: Double
    }

    /// How many times the span of its samples a trend is continued into the future at most.
    public static let maximumProjection: Int64 = 10

    /// The windows the trend is fitted over, shortest first; the last is the most read.
    public static let windows: [Int64] = [30_000, 60_000, 120_000, 300_000]
    public static var window: Int64 { windows.last! }

    /// Assesses `points` (time order, ms) as of `now`: a finding when the resource is exhausted, or will
    /// be within `horizon` (and within ``maximumProjection`` times the span of the samples) at the rate of
    /// one of the `windows`; nil otherwise.
    public static func assess(_ points: [(Int64, Double)], capacity: Double, now: Int64, horizon: Int64) -> Finding? {
        guard capacity > 0, let last = points.last(where: { $0.0 <= now && $0.1.isFinite }), last.0 > now - window else { return nil }
        if last.1 <= 0.005 * capacity {
            let first = points.first { $0.0 > now - window && $0.1.isFinite } ?? last
            return Finding(exhaustedAt: last.0, ratePerSecond: 0, from: Sample(t: first.0, value: first.1), to: Sample(t: last.0, value: last.1), exhausted: true)
        }
        for w in windows {
            if let f = trend(points.filter { $0.0 > now - w && $0.0 <= now && $0.1.isFinite }, capacity: capacity, now: now, horizon: horizon) { return f }
        }
        return nil
    }

    /// A clear falling trend of `recent` reaching zero within `horizon`.
    static func trend(_ recent: [(Int64, Double)], capacity: Double, now: Int64, horizon: Int64) -> Finding? {
        guard let first = recent.first, let last = recent.last else { return nil }
        let ends = (Sample(t: first.0, value: first.1), Sample(t: last.0, value: last.1))
        guard recent.count >= 5, last.0 - first.0 >= 20_000 else { return nil }
        guard let (slope, r2) = linearFit(recent) else { return nil }
        let fall = -slope * Double(last.0 - first.0) / 1000
        guard slope < 0, r2 >= 0.8, fall >= 0.01 * capacity else { return nil }
        let seconds = last.1 / -slope
        let at = last.0 + Int64(seconds * 1000)
        // A trend is continued at most ten times its own length: 30 s of falling memory say little about
        // the next hour (a build's allocations), a fill over 5 minutes something about the next 50.
        guard at - now <= min(horizon, maximumProjection * (last.0 - first.0)) else { return nil }
        return Finding(exhaustedAt: at, ratePerSecond: slope, from: ends.0, to: ends.1, exhausted: false)
    }

    /// The least-squares slope (per second) of `points` (ms, value) and the share of their variance the
    /// line explains (R²); nil when time or value does not vary.
    public static func linearFit(_ points: [(Int64, Double)]) -> (slope: Double, r2: Double)? {
        guard let t0 = points.first?.0 else { return nil }
        let n = Double(points.count)
        var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0
        for (t, v) in points {
            let x = Double(t - t0) / 1000
            sx += x; sy += v; sxx += x * x; sxy += x * v; syy += v * v
        }
        let vx = sxx - sx * sx / n, vy = syy - sy * sy / n, cxy = sxy - sx * sy / n
        guard vx > 0, vy > 0 else { return nil }
        return (cxy / vx, cxy * cxy / (vx * vy))
    }
}
