/// A streaming anomaly detector for one series: constant memory (a few numbers), O(1) work per
/// sample, no training step; scores each sample in [0, 1] as it arrives, without look-ahead.
public protocol StreamingDetector: Sendable {
    /// The anomaly score of the next sample `x`.
    mutating func score(_ x: Double) -> Double
    /// Scores at or above this raise an alert (fixed in code, not tuned per series).
    static var alertThreshold: Double { get }
}

/// Flags a sample when the series leaves the range it has covered so far, in any of five views: the
/// value itself, its short exponentially weighted mean (bursts), its short exponentially weighted
/// deviation (changes of variability), a slow exponentially weighted mean (level shifts too small
/// or too late to leave the range of single values), and how long the value has stayed exactly the
/// same (a series that flatlines — a stalled writer, a stuck sensor — for longer than it ever has). The score grows with how far beyond the known range
/// (relative to the range's width) the sample falls; after an alert the detector stays quiet for
/// `quietAfterAlert` samples, since one anomaly is one event — unless the value breaks out again by
/// half of its known range or more.
///
/// On NAB's realAWSCloudwatch subset it scores 75.43 (standard profile, fixed threshold), above every
/// published detector there (best: 73.42) but short of the 76 aimed for; see BENCHMARKS.md.
public struct NoveltyDetector: StreamingDetector {
    public static let alertThreshold = 0.5

    /// Samples seen before any alert may be raised.
    public var warmUp = 150
    /// Relative overshoot of the known range that raises an alert (score 0.5).
    public var tolerance = 0.05
    /// Samples kept quiet after an alert.
    public var quietAfterAlert = 200
    /// Weight of the newest sample in the short mean and deviation.
    public var alpha = 0.3
    /// Weight of the newest sample in the slow mean.
    public var slowAlpha = 0.05
    /// Shortest run of one unchanged value that counts as a flatline (shorter runs are quantisation).
    public var minimumRun = 10

    private var seen = 0
    private var sinceAlert = Int.max / 2
    private var mean = 0.0
    private var variance = 0.0
    private var slowMean = 0.0
    private var ranges = [Range](repeating: Range(), count: 4)
    private var previous = Double.nan
    /// Samples the current value has stayed exactly the same (1 = it just changed).
    private var run = 0
    /// The longest such run that has ended.
    private var longestRun = 0

    struct Range: Sendable {
        var lo = Double.infinity
        var hi = -Double.infinity
        /// How far `x` lies outside, relative to the range's width; then widens the range to `x`.
        mutating func overshoot(_ x: Double) -> Double {
            defer { lo = Swift.min(lo, x); hi = Swift.max(hi, x) }
            guard hi >= lo, x.isFinite else { return 0 }
            let width = Swift.max(hi - lo, 1e-12)
            return Swift.max(x - hi, lo - x, 0) / width
        }
    }

    public init() {}

    public mutating func score(_ x: Double) -> Double {
        guard x.isFinite else { return 0 }
        if seen == 0 { mean = x; slowMean = x }
        let d = x - mean
        mean += alpha * d
        variance = (1 - alpha) * (variance + alpha * d * d)
        slowMean += slowAlpha * (x - slowMean)
        let value = ranges[0].overshoot(x)
        var over = Swift.max(value, ranges[1].overshoot(mean), ranges[2].overshoot(variance.squareRoot()), ranges[3].overshoot(slowMean))
        if x == previous {
            run += 1
            if run >= minimumRun, run > longestRun, longestRun > 0 { over = Swift.max(over, Double(run - longestRun) / Double(longestRun)) }
        } else {
            longestRun = Swift.max(longestRun, run)
            run = 1
            previous = x
        }
        seen += 1
        sinceAlert += 1
        // Quiet after an alert, unless the value itself breaks far out again (by half the known range;
        // the smoothed views keep moving for a while after one shift and do not count for this).
        guard seen > warmUp, over > 0, sinceAlert > quietAfterAlert || value >= 10 * tolerance else { return 0 }
        // Half the score at `tolerance` (the alert threshold), all of it at twice that.
        let s = Swift.min(1, 0.5 * over / tolerance)
        if s >= Self.alertThreshold { sinceAlert = 0 }
        return s
    }
}
