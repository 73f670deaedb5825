/// One point of a rollup tier: the samples of `[t, t + step)` reduced to min, max, sum, count and last.
public struct RollupPoint: Sendable, Equatable {
    public var t: Int64
    public var min: Double
    public var max: Double
    public var sum: Double
    public var count: Double
    public var last: Double

    public init(t: Int64, min: Double, max: Double, sum: Double, count: Double, last: Double) {
        self.t = t
        self.min = min
        self.max = max
        self.sum = sum
        self.count = count
        self.last = last
    }

    /// The mean of the bucket.
    public var avg: Double { sum / count }

    /// Folds `other` (later in time) into this point.
    mutating func merge(_ other: RollupPoint) {
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        sum += other.sum
        count += other.count
        last = other.last
    }
}

/// Building and storing rollups.
enum Rollup {
    /// Reduces time-ordered samples to one point per `step`-aligned bucket.
    static func points(_ samples: some Sequence<(Int64, Double)>, step: Int64) -> [RollupPoint] {
        var out: [RollupPoint] = []
        for (t, v) in samples {
            let b = floorDiv(t, step) * step
            if let last = out.last, last.t == b {
                out[out.count - 1].merge(RollupPoint(t: b, min: v, max: v, sum: v, count: 1, last: v))
            } else {
                out.append(RollupPoint(t: b, min: v, max: v, sum: v, count: 1, last: v))
            }
        }
        return out
    }

    /// Re-buckets time-ordered points to a coarser `step`.
    static func coarsen(_ points: [RollupPoint], step: Int64) -> [RollupPoint] {
        var out: [RollupPoint] = []
        for p in points {
            let b = floorDiv(p.t, step) * step
            if let last = out.last, last.t == b { out[out.count - 1].merge(p) } else {
                var q = p
                q.t = b
                out.append(q)
            }
        }
        return out
    }

    /// Points as a member of a group row (``GroupBlock``): five value columns.
    static func encodeMember(_ points: [RollupPoint]) throws -> [UInt8] {
        try ChunkCodec.encodeMember(times: points.map(\.t), columns: [points.map(\.min), points.map(\.max), points.map(\.sum),
                                                                     points.map(\.count), points.map(\.last)])
    }

    static func decodeMember(_ member: ArraySlice<UInt8>) throws -> [RollupPoint] {
        points(try ChunkCodec.decodeMember(member, columnCount: 5))
    }

    /// A rollup block standing alone (the per-series rows before v17; kept to read them when migrating).
    static func decode(_ blob: [UInt8]) throws -> [RollupPoint] {
        points(try ChunkCodec.decode(blob, columnCount: 5))
    }

    private static func points(_ d: (times: [Int64], columns: [[Double]])) -> [RollupPoint] {
        let (t, c) = d
        return t.indices.map { RollupPoint(t: t[$0], min: c[0][$0], max: c[1][$0], sum: c[2][$0], count: c[3][$0], last: c[4][$0]) }
    }

    /// A rollup block standing alone (tests, and what v16 stores held).
    static func encode(_ points: [RollupPoint]) throws -> [UInt8] {
        try ChunkCodec.encode(times: points.map(\.t), columns: [points.map(\.min), points.map(\.max), points.map(\.sum),
                                                               points.map(\.count), points.map(\.last)])
    }

    /// Replaces the points of `existing` at the times of `new` and keeps time order.
    static func merge(_ existing: [RollupPoint], _ new: [RollupPoint]) -> [RollupPoint] {
        var byTime = Dictionary(existing.map { ($0.t, $0) }, uniquingKeysWith: { _, b in b })
        for p in new { byTime[p.t] = p }
        return byTime.values.sorted { $0.t < $1.t }
    }
}

/// Floor division for possibly negative times.
@inline(__always)
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
