import TwinCore

/// How the store cuts its head and how long it keeps each tier. Every duration is in milliseconds.
public struct StoragePolicy: Sendable, Equatable {
    public static let minute: Int64 = 60_000
    public static let hour: Int64 = 3_600_000
    public static let day: Int64 = 86_400_000
    /// The span of one row of the 1-hour tier (a day of points: compaction rewrites the row of each
    /// group every hour, so it stays small).
    public static let hourBlock: Int64 = day

    /// Length of a head window: how often open chunks are sealed and the log starts a new segment.
    /// Must divide an hour so windows never straddle the hourly compaction boundary.
    public var headWindow: Int64 = 5 * minute
    /// Raw samples are kept this long behind the newest sample.
    public var rawRetention: Int64 = 7 * day
    /// 1-minute rollups are kept this long.
    public var minuteRetention: Int64 = 90 * day
    /// 1-hour rollups are kept this long.
    public var hourRetention: Int64 = 730 * day
    /// Closed state versions and events are kept this long after they ended.
    public var stateRetention: Int64 = 90 * day
    /// The most the data directory may take, in bytes (nil: no cap). Above it the oldest raw samples the
    /// 1-minute rollups cover are thinned to those rollups, an hour at a time, and each thinned span is
    /// recorded as a gap (`raw_gaps`); state history is never thinned.
    public var diskCap: Int64?

    public init() {}

    /// Checks the durations; says what is wrong.
    public func validate() throws {
        guard headWindow >= 1000, Self.hour % headWindow == 0 else {
            throw TwinError.badInput("head window \(headWindow) ms must be at least 1 s and divide an hour (1m, 2m, 5m, 10m, 15m, 30m, 1h …)")
        }
        for (name, v) in [("raw", rawRetention), ("1m", minuteRetention), ("1h", hourRetention), ("state", stateRetention)] where v < Self.hour {
            throw TwinError.badInput("\(name) retention \(v) ms is shorter than an hour")
        }
        if let cap = diskCap, cap < 16 << 20 { throw TwinError.badInput("disk cap \(cap) bytes is below 16 MiB") }
    }
}
