/// One series' samples as two columns, times ascending: how chunks decode and how the query engine reads
/// them, so a read copies each sample once instead of building (time, value) pairs and splitting them.
public struct SampleColumns: Sendable {
    public var t: [Int64]
    public var v: [Double]

    public init(t: [Int64] = [], v: [Double] = []) {
        precondition(t.count == v.count, "sample columns of unequal length")
        self.t = t
        self.v = v
    }

    init(_ samples: [(Int64, Double)]) {
        self.init()
        append(samples)
    }

    public var count: Int { t.count }

    /// Appends samples given as pairs.
    mutating func append(_ samples: [(Int64, Double)]) {
        t.reserveCapacity(t.count + samples.count)
        v.reserveCapacity(v.count + samples.count)
        for (time, value) in samples {
            t.append(time)
            v.append(value)
        }
    }

    /// The first index whose time is at least `x`.
    static func lowerBound(_ a: [Int64], _ x: Int64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }
}
