import TwinCore

/// One series with its samples in time order, as a ``SampleSource`` returns it. `labels` includes
/// `__name__`.
public struct SeriesData: Sendable {
    public var labels: Labels
    /// `labels` without `__name__`, made once (most functions drop the name at every step).
    public var nameless: Labels
    public var t: [Int64]
    public var v: [Double]
    /// Times of Prometheus' stale markers, ascending, kept apart from the samples (a range sees none of
    /// them): an instant selector finds nothing when a marker follows the newest sample it would take.
    /// Written by the rule engine when a recorded series ends, and by `promtool`'s `stale` input values.
    public var staleAt: [Int64] = []
    public init(labels: Labels, t: [Int64], v: [Double], staleAt: [Int64] = []) {
        self.labels = labels
        self.nameless = labels.droppingName
        self.t = t
        self.v = v
        self.staleAt = staleAt
    }

    /// Whether a stale marker lies in `(after, upTo]`: the sample at `after` is then not current at `upTo`.
    @inline(__always)
    func isStale(after: Int64, upTo: Int64) -> Bool {
        guard !staleAt.isEmpty else { return false }
        var lo = 0, hi = staleAt.count // first marker > after
        while lo < hi { let m = (lo + hi) / 2; if staleAt[m] <= after { lo = m + 1 } else { hi = m } }
        return lo < staleAt.count && staleAt[lo] <= upTo
    }
}

/// Where the engine reads series from: the store, or anything else that can match labels.
public protocol SampleSource: Sendable {
    /// Every series matching all `matchers`, with its samples in `[from, to]` (series without samples
    /// there may be left out). Throws ``PromQLError/execution(_:)`` rather than load more than
    /// `limit` samples, and ``PromQLError/timeout(_:)`` once the clock passes `deadline` (ms).
    func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int, deadline: Int64) throws -> [SeriesData]
}

/// One element of an instant vector: labels, value, and the sample's own timestamp (the evaluation
/// time for computed values).
struct Sample {
    var labels: Labels
    var value: Double
    var t: Int64
}

/// One element of a range vector at one evaluation step.
struct RangeSeries {
    var labels: Labels
    var nameless: Labels
    var t: ArraySlice<Int64>
    var v: ArraySlice<Double>
}

/// What an expression yields at one evaluation time.
enum StepValue {
    case scalar(Double)
    case string(String)
    case vector([Sample])
    case matrix([RangeSeries])
}

/// The answer to a query, shaped as the Prometheus HTTP API returns it.
public enum QueryResult: Sendable {
    case scalar(t: Int64, value: Double)
    case string(t: Int64, value: String)
    case vector(t: Int64, [(labels: Labels, value: Double)])
    case matrix([(labels: Labels, points: [(Int64, Double)])])

    /// `scalar`, `string`, `vector` or `matrix`.
    public var resultType: String {
        switch self {
        case .scalar: return "scalar"
        case .string: return "string"
        case .vector: return "vector"
        case .matrix: return "matrix"
        }
    }
}

extension Labels {
    public static let metricName = "__name__"

    /// The labels without `__name__`.
    public var droppingName: Labels {
        guard pairs.contains(where: { $0.name == Labels.metricName }) else { return self }
        return Labels(sorted: pairs.filter { $0.name != Labels.metricName })
    }

    /// Labels kept (`keep` true) or removed by name; used for grouping and vector matching.
    func filtered(_ names: Set<String>, keep: Bool) -> Labels {
        Labels(sorted: pairs.filter { names.contains($0.name) == keep })
    }

    /// The value of `name`, or "" when absent (PromQL's view of a missing label).
    func value(_ name: String) -> String { self[name] ?? "" }

    /// The labels with `name` set to `value` (removed when `value` is empty).
    func setting(_ name: String, _ value: String) -> Labels {
        var p = pairs.filter { $0.name != name }
        if !value.isEmpty { p.append(Label(name, value)) }
        return Labels(p)
    }

    /// Prometheus' label-set order: label by label, name then value; a prefix sorts first.
    public static func promLess(_ a: Labels, _ b: Labels) -> Bool {
        let x = a.pairs, y = b.pairs
        for i in 0..<Swift.min(x.count, y.count) {
            if x[i].name != y[i].name { return x[i].name < y[i].name }
            if x[i].value != y[i].value { return x[i].value < y[i].value }
        }
        return x.count < y.count
    }
}
