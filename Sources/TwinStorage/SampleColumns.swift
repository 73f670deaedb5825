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

    /// Parts of one series (from several chunk rows, each time-sorted) joined into columns with one copy.
    /// Parts normally follow each other in time; where rows overlap (a late import) the samples are
    /// sorted and duplicates of a time dropped, as ``TwinStore/ordered(_:)`` does.
    init(joining parts: [(t: ArraySlice<Int64>, v: ArraySlice<Double>)]) {
        if parts.count == 1 {
            self.init(t: Array(parts[0].t), v: Array(parts[0].v))
            return
        }
        let n = parts.reduce(0) { $0 + $1.t.count }
        var t = [Int64](), v = [Double]()
        t.reserveCapacity(n)
        v.reserveCapacity(n)
        var inOrder = true
        for p in parts where !p.t.isEmpty {
            if let last = t.last, p.t.first! <= last { inOrder = false }
            t += p.t
            v += p.v
        }
        if inOrder {
            self.init(t: t, v: v)
        } else {
            self.init(TwinStore.ordered(Array(zip(t, v))))
        }
    }

    /// The first index whose time is at least `x`.
    static func lowerBound(_ a: [Int64], _ x: Int64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }
}
