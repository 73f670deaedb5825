import TwinCore

/// Evaluates PromQL over a ``SampleSource`` with Prometheus 2.42's semantics: a 5-minute lookback for
/// instant selectors, closed ranges `[t - range, t]`, subquery steps aligned to multiples of the step.
///
/// Each selector's data is fetched once for the whole query (the union of the windows every step
/// needs) and then sliced per step by binary search.
public struct PromQLEngine: Sendable {
    public var source: any SampleSource
    /// How far back an instant selector looks for a sample (Prometheus' `--query.lookback-delta`).
    public var lookback: Int64 = 5 * 60_000
    /// The step of subqueries that give none (Prometheus' global evaluation interval).
    public var defaultSubqueryStep: Int64 = 60_000
    /// Most points a range query may return per series (Prometheus: 11,000).
    public var maxPointsPerSeries = 11_000
    /// Most samples one query may hold at once (Prometheus' `--query.max-samples` is 50 M; a twin shares
    /// its host, so 5 M: 80 MB, a month of one series at 1 s). Loaded samples, subquery steps and their
    /// points, and a range query's output points all count, checked as they grow.
    public var maxSamples = 5_000_000
    /// How long a query may run, in milliseconds.
    public var timeout: Int64 = 120_000
    /// Whether range queries are evaluated node by node over all steps (``Evaluation/matrix(_:)``)
    /// rather than the whole expression once per step; both give the same answers (tested side by side).
    public var matrixForm = true

    public init(source: any SampleSource) { self.source = source }

    /// Evaluates `expr` at one time (`/api/v1/query`).
    public func instant(_ expr: Expr, at t: Int64) throws -> QueryResult {
        let ev = try Evaluation(engine: self, expr: expr, start: t, end: t)
        switch try ev.eval(expr, at: t) {
        case .scalar(let v): return .scalar(t: t, value: v)
        case .string(let s): return .string(t: t, value: s)
        case .vector(let samples):
            try Evaluation.checkUnique(samples)
            return .vector(t: t, samples.map { ($0.labels, $0.value) })
        case .matrix(let series):
            return .matrix(series.map { (labels: $0.labels, points: Array(zip($0.t, $0.v))) })
        }
    }

    /// Refuses a range query's bounds as Prometheus does: end before start, a step of 0 or less, more
    /// than ``maxPointsPerSeries`` points.
    public func checkRange(start: Int64, end: Int64, step: Int64) throws {
        guard end >= start else { throw PromQLError.badData("end timestamp must not be before start time") }
        guard step > 0 else { throw PromQLError.badData("zero or negative query resolution step widths are not accepted. Try a positive integer") }
        guard end.minus(start) / step <= Int64(maxPointsPerSeries) else {
            throw PromQLError.badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
        }
    }

    /// Evaluates `expr` at `start`, `start + step`, ... up to `end` (`/api/v1/query_range`).
    public func range(_ expr: Expr, start: Int64, end: Int64, step: Int64) throws -> QueryResult {
        try checkRange(start: start, end: end, step: step)
        switch expr.type {
        case .scalar, .vector: break
        default: throw PromQLError.badData("invalid expression type \"\(expr.type == .matrix ? "range vector" : "string")\" for range query, must be Scalar or instant Vector")
        }
        let ev = try Evaluation(engine: self, expr: expr, start: start, end: end, step: step)
        if matrixForm, end > start {
            do { return try ev.assemble(ev.matrix(expr)) } catch is StepByStep {}
        }
        var index: [Labels: Int] = [:]
        var out: [(labels: Labels, points: [(Int64, Double)])] = []
        var previous: [Int] = [], positions: [Int] = []
        var t = start
        var stepsDone = 0
        while t <= end {
            switch try ev.eval(expr, at: t) {
            case .scalar(let v):
                try ev.charge(1)
                if out.isEmpty { out.append((Labels.empty, [])) }
                out[0].points.append((t, v))
            case .vector(let samples):
                try ev.charge(samples.count)
                // Steps mostly yield the same series in the same order, their labels sharing storage: the
                // previous step's position is checked first (equal storage compares in O(1)), the hash
                // of the labels only when that fails.
                positions.removeAll(keepingCapacity: true)
                for (k, s) in samples.enumerated() {
                    let i: Int
                    if k < previous.count, out[previous[k]].labels == s.labels { i = previous[k] } else if let j = index[s.labels] { i = j } else {
                        i = out.count
                        index[s.labels] = i
                        out.append((s.labels, []))
                    }
                    // Two samples of one step with the same labels: Prometheus refuses the query.
                    if out[i].points.last?.0 == t { throw PromQLError.execution("vector cannot contain metrics with the same labelset") }
                    out[i].points.append((t, s.value))
                    positions.append(i)
                }
                swap(&previous, &positions)
            default: break
            }
            stepsDone += 1
            ev.trimDerived()
            if stepsDone & 63 == 0 { try ev.checkDeadline() } // a clock read per step cost a tenth of a small query
            let (next, overflow) = t.addingReportingOverflow(step)
            if overflow { break }
            t = next
        }
        out.sort { Labels.promLess($0.labels, $1.labels) }
        return .matrix(out)
    }
}

/// The state of one query's evaluation: fetched data, bounds and limits.
final class Evaluation {
    let engine: PromQLEngine
    let start: Int64
    let end: Int64
    /// The range query's step (0 for instant queries): the grid ``gridValues`` computes ahead.
    let step: Int64
    var data: [Int: [SeriesData]] = [:]
    private let deadline: Int64
    /// Samples held now: loaded data, subquery points being built, output points (``charge(_:)``).
    private var held = 0
    /// Results of range-vector functions over plain selectors for every step of the grid, keyed by
    /// selector id (see ``gridValues``).
    private var grid: [Int: [MatrixRow]] = [:]
    /// Label sets derived per node and input (see ``derive(_:node:_:_:_:)``), with the inputs kept alive
    /// so that their storage addresses stay theirs.
    private var derived: [DerivedKey: (inputs: (Labels, Labels?), labels: Labels, id: Int)] = [:]
    /// Distinct derived label sets, numbered: operators group and match by these numbers.
    private var internedIDs: [Labels: Int] = [:]
    /// Step values held by intermediate results of the matrix form (``chargeCells(_:)``).
    var cells = 0
    private var interned: [Labels] = []

    init(engine: PromQLEngine, expr: Expr, start: Int64, end: Int64, step: Int64 = 0) throws {
        self.engine = engine
        self.start = start
        self.end = end
        self.step = step
        deadline = TwinTime.nowMillis() + engine.timeout
        var windows: [Int: (VectorSelector, Int64, Int64)] = [:]
        collectWindows(expr, from: start, to: end, into: &windows)
        for (id, (vs, from, to)) in windows {
            let series = try engine.source.select(vs.matchers, from: from, to: to, limit: engine.maxSamples - held, deadline: deadline)
            try charge(series.reduce(0) { $0 + $1.t.count })
            data[id] = series
        }
        try checkDeadline()
    }

    func checkDeadline() throws {
        if TwinTime.nowMillis() > deadline { throw PromQLError.timeout("query timed out in query execution") }
    }

    /// Counts `n` more samples held against the query's budget (``PromQLEngine/maxSamples``).
    func charge(_ n: Int) throws {
        held += n
        if held > engine.maxSamples { throw PromQLError.execution(StoreSampleSource.tooMany) }
    }

    /// The time a selector or subquery is evaluated at, given the step time and its `@` modifier.
    func effectiveTime(_ at: AtModifier?, _ t: Int64) -> Int64 {
        switch at {
        case nil: return t
        case .time(let x): return x
        case .start: return start
        case .end: return end
        }
    }

    /// Walks the tree and records, per selector, the time window every evaluation in `[from, to]` needs.
    private func collectWindows(_ e: Expr, from: Int64, to: Int64, into w: inout [Int: (VectorSelector, Int64, Int64)]) {
        func add(_ vs: VectorSelector, _ range: Int64) {
            let a = vs.at == nil ? from : effectiveTime(vs.at, from), b = vs.at == nil ? to : effectiveTime(vs.at, to)
            let lo = a.minus(vs.offset).minus(range), hi = b.minus(vs.offset)
            if let old = w[vs.id] { w[vs.id] = (vs, min(old.1, lo), max(old.2, hi)) } else { w[vs.id] = (vs, lo, hi) }
        }
        switch e {
        case .number, .string: break
        case .vector(let vs): add(vs, engine.lookback)
        case .matrix(let vs, let range): add(vs, range)
        case .subquery(let sq):
            let a = sq.at == nil ? from : effectiveTime(sq.at, from), b = sq.at == nil ? to : effectiveTime(sq.at, to)
            collectWindows(sq.expr, from: a.minus(sq.offset).minus(sq.range), to: b.minus(sq.offset), into: &w)
        case .call(_, let args, _): for a in args { collectWindows(a, from: from, to: to, into: &w) }
        case .aggregate(let agg):
            collectWindows(agg.expr, from: from, to: to, into: &w)
            if let p = agg.parameter { collectWindows(p, from: from, to: to, into: &w) }
        case .binary(let b):
            collectWindows(b.lhs, from: from, to: to, into: &w)
            collectWindows(b.rhs, from: from, to: to, into: &w)
        case .unaryMinus(let x), .paren(let x): collectWindows(x, from: from, to: to, into: &w)
        }
    }

    // MARK: Derived label sets

    /// What a node derives from an input's labels.
    enum Derivation: Int { case noName, group, signature, result }

    private struct DerivedKey: Hashable {
        var kind: Int, node: Int, a: UInt, b: UInt
    }

    /// The label set node `node` derives from `labels` (and `other`, for a result taking labels from the
    /// "one" side of a match), made by `make` once per input and remembered: every step of a range query
    /// sees the same input series again, sharing storage, so a step costs a lookup by address where it
    /// would filter and hash the labels. The result is interned: equal results share storage and a
    /// number, by which operators group and match instead of hashing labels.
    func derive(_ kind: Derivation, node: Int, _ labels: Labels, _ other: Labels? = nil, _ make: () -> Labels) -> (labels: Labels, id: Int) {
        let key = DerivedKey(kind: kind.rawValue, node: node, a: labels.storageAddress, b: other?.storageAddress ?? 0)
        if let d = derived[key] { return (d.labels, d.id) }
        let (l, id) = intern(make())
        derived[key] = ((labels, other), l, id)
        return (l, id)
    }

    /// The shared copy of `labels` and its number.
    func intern(_ labels: Labels) -> (labels: Labels, id: Int) {
        if let id = internedIDs[labels] { return (interned[id], id) }
        let id = interned.count
        internedIDs[labels] = id
        interned.append(labels)
        return (labels, id)
    }

    /// Forgets derived label sets once there are many (a query whose labels change at every step): called
    /// between steps only, as numbers handed out within one operation must stay consistent.
    func trimDerived() {
        guard derived.count + interned.count > 1 << 18 else { return }
        derived.removeAll()
        internedIDs.removeAll()
        interned.removeAll()
    }

    /// `labels` without `__name__`, remembered per input.
    func dropName(_ labels: Labels) -> Labels {
        guard labels.pairs.contains(where: { $0.name == Labels.metricName }) else { return labels }
        return derive(.noName, node: 0, labels) { labels.droppingName }.labels
    }

    static func checkUnique(_ samples: [Sample]) throws {
        guard samples.count > 1 else { return }
        var seen = Set<Labels>()
        seen.reserveCapacity(samples.count)
        for s in samples where !seen.insert(s.labels).inserted {
            throw PromQLError.execution("vector cannot contain metrics with the same labelset")
        }
    }

    // MARK: Evaluation at one time

    func eval(_ e: Expr, at t: Int64) throws -> StepValue {
        switch e {
        case .number(let v): return .scalar(v)
        case .string(let s): return .string(s)
        case .paren(let x): return try eval(x, at: t)
        case .unaryMinus(let x):
            switch try eval(x, at: t) {
            case .scalar(let v): return .scalar(-v)
            case .vector(let s): return .vector(s.map { Sample(labels: dropName($0.labels), value: -$0.value, t: t) })
            default: throw PromQLError.execution("unary minus needs a scalar or an instant vector")
            }
        case .vector(let vs): return .vector(instantSelect(vs, at: t))
        case .matrix(let vs, let range): return .matrix(rangeSelect(vs, range: range, at: t))
        case .subquery(let sq): return .matrix(try subquery(sq, at: t).map(\.series))
        case .call(let name, let args, _): return try call(name, args, at: t)
        case .aggregate(let agg): return try aggregate(agg, at: t)
        case .binary(let b): return try binary(b, at: t)
        }
    }

    func scalar(_ e: Expr, at t: Int64) throws -> Double {
        guard case .scalar(let v) = try eval(e, at: t) else { throw PromQLError.execution("expected a scalar") }
        return v
    }

    func vector(_ e: Expr, at t: Int64) throws -> [Sample] {
        guard case .vector(let v) = try eval(e, at: t) else { throw PromQLError.execution("expected an instant vector") }
        return v
    }

    func string(_ e: Expr, at t: Int64) throws -> String {
        guard case .string(let v) = try eval(e, at: t) else { throw PromQLError.execution("expected a string") }
        return v
    }

    /// The newest sample of each series in `[t - offset - lookback, t - offset]`.
    func instantSelect(_ vs: VectorSelector, at t: Int64) -> [Sample] {
        let ref = effectiveTime(vs.at, t).minus(vs.offset)
        let lo = ref.minus(engine.lookback)
        var out: [Sample] = []
        for s in data[vs.id] ?? [] {
            let i = Self.upperBound(s.t, ref) - 1 // last index with t <= ref
            guard i >= 0, s.t[i] >= lo, !s.isStale(after: s.t[i], upTo: ref) else { continue }
            out.append(Sample(labels: s.labels, value: s.v[i], t: s.t[i]))
        }
        return out
    }

    /// Each series' samples in `[t - offset - range, t - offset]`.
    func rangeSelect(_ vs: VectorSelector, range: Int64, at t: Int64) -> [RangeSeries] {
        let hi = effectiveTime(vs.at, t).minus(vs.offset)
        let lo = hi.minus(range)
        var out: [RangeSeries] = []
        for s in data[vs.id] ?? [] {
            let a = Self.lowerBound(s.t, lo), b = Self.upperBound(s.t, hi)
            guard a < b else { continue }
            out.append(RangeSeries(labels: s.labels, nameless: s.nameless, t: s.t[a..<b], v: s.v[a..<b]))
        }
        return out
    }

    /// The value of `name(vs[range])` at grid time `t`, from ``gridRows`` (nil when `t` is off the grid
    /// or this is an instant query).
    func gridValues(_ name: String, _ fn: PromFunctions.RangeFunction, _ vs: VectorSelector, range: Int64, param: Double, at t: Int64) -> [Sample]? {
        guard step > 0, t >= start, t <= end, (t - start) % step == 0 else { return nil }
        let k = Int((t - start) / step)
        return gridRows(name, fn, vs, range: range, param: param).compactMap { $0.present[k] ? Sample(labels: $0.labels, value: $0.values[k], t: t) : nil }
    }

    /// `name(vs[range])` at every step of the grid, computed on first use series by series (each series'
    /// window slides forward once, instead of every step building every window): the common
    /// `rate(x[1m])` over a range query costs a pass over each series. The value at a time does not
    /// depend on where it is asked, so subqueries landing on the grid reuse it.
    func gridRows(_ name: String, _ fn: PromFunctions.RangeFunction, _ vs: VectorSelector, range: Int64, param: Double) -> [MatrixRow] {
        if let g = grid[vs.id] { return g }
        let steps = Int((end - start) / step) + 1
        var out: [MatrixRow] = []
        let keepName = name == "last_over_time"
        for s in data[vs.id] ?? [] {
            var a = 0, b = 0
            let n = s.t.count
            var row = MatrixRow(labels: keepName ? s.labels : s.nameless, steps: steps)
            for i in 0..<steps {
                let ts = start + Int64(i) * step
                let hi = effectiveTime(vs.at, ts).minus(vs.offset), lo = hi.minus(range)
                if vs.at != nil { a = 0; b = 0 }
                while a < n, s.t[a] < lo { a += 1 }
                if b < a { b = a }
                while b < n, s.t[b] <= hi { b += 1 }
                guard a < b, let v = fn(s.t[a..<b], s.v[a..<b], lo, hi, ts, param) else { continue }
                row.set(i, v)
            }
            if row.any { out.append(row) }
        }
        grid[vs.id] = out
        return out
    }

    /// A subquery at `t`: the inner expression at every multiple of the step in
    /// `[t - offset - range, t - offset]`, with the window bounds for extrapolation.
    func subquery(_ sq: Subquery, at t: Int64) throws -> [(series: RangeSeries, from: Int64, to: Int64)] {
        let step = sq.step > 0 ? sq.step : engine.defaultSubqueryStep
        let hi = effectiveTime(sq.at, t).minus(sq.offset)
        let lo = hi.minus(sq.range)
        var first = (lo / step) * step
        if first < lo { first = first.plus(step) }
        // Each step holds at least its time; a subquery with more steps than the budget is refused at once.
        guard first > hi || hi.minus(first) / step < Int64(engine.maxSamples - held) else {
            throw PromQLError.execution(StoreSampleSource.tooMany)
        }
        var index: [Labels: Int] = [:]
        var acc: [(Labels, [Int64], [Double])] = []
        var charged = 0
        defer { held -= charged }
        var ts = first, steps = 0
        while ts <= hi {
            if steps & 255 == 0 { try checkDeadline() }
            steps += 1
            trimDerived()
            let value = try eval(sq.expr, at: ts)
            let n: Int
            switch value {
            case .scalar: n = 1
            case .vector(let samples): n = max(1, samples.count)
            default: n = 0
            }
            try charge(n)
            charged += n
            switch value {
            case .scalar(let v):
                if acc.isEmpty { acc.append((.empty, [], [])) }
                acc[0].1.append(ts); acc[0].2.append(v)
            case .vector(let samples):
                for s in samples {
                    if let i = index[s.labels] { acc[i].1.append(ts); acc[i].2.append(s.value) } else {
                        index[s.labels] = acc.count
                        acc.append((s.labels, [ts], [s.value]))
                    }
                }
            default: throw PromQLError.execution("subquery needs a scalar or an instant vector")
            }
            let (next, overflow) = ts.addingReportingOverflow(step)
            if overflow { break }
            ts = next
        }
        return acc.map { (RangeSeries(labels: $0.0, nameless: $0.0.droppingName, t: $0.1[...], v: $0.2[...]), lo, hi) }
    }

    static func lowerBound(_ a: [Int64], _ x: Int64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }

    static func upperBound(_ a: [Int64], _ x: Int64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] <= x { lo = m + 1 } else { hi = m } }
        return lo
    }
}

extension Int64 {
    /// Subtraction that saturates at the ends instead of trapping: offsets, ranges and `@` times come
    /// from the query text and may be absurd.
    func minus(_ x: Int64) -> Int64 {
        let (r, o) = subtractingReportingOverflow(x)
        return o ? (x > 0 ? .min : .max) : r
    }

    /// Addition that saturates at the ends instead of trapping.
    func plus(_ x: Int64) -> Int64 {
        let (r, o) = addingReportingOverflow(x)
        return o ? (x > 0 ? .max : .min) : r
    }
}
