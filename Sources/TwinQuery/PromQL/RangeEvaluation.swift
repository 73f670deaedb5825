import Foundation
import TwinCore

/// One series of an instant vector at every step of a range query: its labels once, a value per step and
/// whether it is present there.
struct MatrixRow {
    var labels: Labels
    var values: [Double]
    var present: [Bool]

    init(labels: Labels, steps: Int) {
        self.labels = labels
        values = [Double](repeating: 0, count: steps)
        present = [Bool](repeating: false, count: steps)
    }

    @inline(__always)
    mutating func set(_ k: Int, _ v: Double) {
        values[k] = v
        present[k] = true
    }

    /// Whether the series is present at any step.
    var any: Bool { present.contains(true) }
}

/// What an expression yields at every step of a range query.
enum StepMatrix {
    case scalar([Double])
    case vector([MatrixRow])
}

/// Raised inside ``Evaluation/matrix(_:)`` when a query would hold more step values than the sample
/// budget allows: the range query is evaluated step by step instead.
struct StepByStep: Error {}

/// Range queries evaluated node by node over all steps at once (the matrix form) instead of the whole
/// tree once per step: the labels of a series are handled once per node instead of once per step, and a
/// step costs a pass over arrays of values. The per-step semantics are kept exactly, step by step — which
/// series are present, how they match and group, in which order values are added — so both forms give
/// the same answer; expressions without a matrix form here (subqueries, `topk`, `label_replace`, ...)
/// are evaluated step by step and their results gathered into rows.
extension Evaluation {
    var stepCount: Int { Int((end - start) / step) + 1 }

    @inline(__always)
    func stepTime(_ k: Int) -> Int64 { start + Int64(k) * step }

    /// Counts `n` step values of an intermediate result; past the sample budget the query falls back
    /// to step-by-step evaluation, which holds one step at a time.
    func chargeCells(_ rows: Int) throws {
        cells += rows * stepCount
        if cells > engine.maxSamples { throw StepByStep() }
    }

    /// A range query's answer from its matrix form: rows with equal labels joined (two of them present at
    /// one step is the error Prometheus gives), series sorted as Prometheus sorts them.
    func assemble(_ m: StepMatrix) throws -> QueryResult {
        let n = stepCount
        switch m {
        case .scalar(let v):
            try charge(n)
            return .matrix([(Labels.empty, (0..<n).map { (stepTime($0), v[$0]) })])
        case .vector(let rows):
            var index: [Labels: Int] = [:]
            var joined: [MatrixRow] = []
            for r in rows {
                guard let i = index[r.labels] else { index[r.labels] = joined.count; joined.append(r); continue }
                for k in 0..<n where r.present[k] {
                    if joined[i].present[k] { throw PromQLError.execution("vector cannot contain metrics with the same labelset") }
                    joined[i].set(k, r.values[k])
                }
            }
            var out: [(labels: Labels, points: [(Int64, Double)])] = []
            out.reserveCapacity(joined.count)
            for r in joined {
                var points: [(Int64, Double)] = []
                for k in 0..<n where r.present[k] { points.append((stepTime(k), r.values[k])) }
                try charge(points.count)
                if !points.isEmpty { out.append((r.labels, points)) }
            }
            out.sort { Labels.promLess($0.labels, $1.labels) }
            return .matrix(out)
        }
    }

    func matrix(_ e: Expr) throws -> StepMatrix {
        try checkDeadline()
        let n = stepCount
        switch e {
        case .number(let v): return .scalar([Double](repeating: v, count: n))
        case .paren(let x): return try matrix(x)
        case .unaryMinus(let x):
            switch try matrix(x) {
            case .scalar(let v): return .scalar(v.map { -$0 })
            case .vector(var rows):
                for i in rows.indices {
                    rows[i].labels = dropName(rows[i].labels)
                    for k in 0..<n { rows[i].values[k] = -rows[i].values[k] }
                }
                return .vector(rows)
            }
        case .vector(let vs): return .vector(try selectRows(vs))
        case .call(let name, let args, _):
            if let m = try callMatrix(name, args) { return m }
        case .aggregate(let agg):
            if let m = try aggregateMatrix(agg) { return m }
        case .binary(let b): return try binaryMatrix(b)
        default: break
        }
        return try gathered(e)
    }

    /// `e` evaluated step by step, its samples gathered into rows by labels in order of appearance.
    private func gathered(_ e: Expr) throws -> StepMatrix {
        let n = stepCount
        if e.type == .scalar { return .scalar(try (0..<n).map { try scalar(e, at: stepTime($0)) }) }
        var rows: [MatrixRow] = []
        var index: [Labels: [Int]] = [:]
        for k in 0..<n {
            if k & 63 == 63 { try checkDeadline() }
            for s in try vector(e, at: stepTime(k)) {
                // Equal labels twice in one step (allowed inside an expression) take two rows.
                let candidates = index[s.labels] ?? []
                if let r = candidates.first(where: { !rows[$0].present[k] }) { rows[r].set(k, s.value); continue }
                try chargeCells(1)
                index[s.labels, default: []].append(rows.count)
                var row = MatrixRow(labels: s.labels, steps: n)
                row.set(k, s.value)
                rows.append(row)
            }
        }
        return .vector(rows)
    }

    /// An instant selector at every step: each series' newest sample within the lookback.
    private func selectRows(_ vs: VectorSelector) throws -> [MatrixRow] {
        let series = data[vs.id] ?? []
        try chargeCells(series.count)
        let n = stepCount
        var rows: [MatrixRow] = []
        for s in series {
            var row = MatrixRow(labels: s.labels, steps: n)
            var i = 0 // samples with t <= ref, found moving forward (refs grow with the step unless `@` fixes them)
            for k in 0..<n {
                let ref = effectiveTime(vs.at, stepTime(k)).minus(vs.offset)
                if vs.at != nil { i = Self.upperBound(s.t, ref) } else { while i < s.t.count, s.t[i] <= ref { i += 1 } }
                guard i > 0, s.t[i - 1] >= ref.minus(engine.lookback), !s.isStale(after: s.t[i - 1], upTo: ref) else { continue }
                row.set(k, s.v[i - 1])
            }
            if row.any { rows.append(row) }
        }
        return rows
    }

    private func scalarMatrix(_ e: Expr) throws -> [Double] {
        guard case .scalar(let v) = try matrix(e) else { throw PromQLError.execution("expected a scalar") }
        return v
    }

    private func vectorMatrix(_ e: Expr) throws -> [MatrixRow] {
        guard case .vector(let v) = try matrix(e) else { throw PromQLError.execution("expected an instant vector") }
        return v
    }

    /// Rows with a function of each value (and the step), the name dropped.
    private func mapped(_ rows: [MatrixRow], _ f: (Double, Int) -> Double) -> [MatrixRow] {
        var rows = rows
        for i in rows.indices {
            rows[i].labels = dropName(rows[i].labels)
            for k in rows[i].values.indices where rows[i].present[k] { rows[i].values[k] = f(rows[i].values[k], k) }
        }
        return rows
    }

    /// The functions with a matrix form; nil for the rest.
    private func callMatrix(_ name: String, _ args: [Expr]) throws -> StepMatrix? {
        let n = stepCount
        if let mi = args.firstIndex(where: { $0.type == .matrix }) {
            // A range function with constant arguments over a plain selector: the grid.
            guard case .matrix(let vs, let range) = args[mi], name != "absent_over_time", name != "holt_winters",
                  args.count == 1 || args.allSatisfy({ if case .number = $0 { return true }; return $0.type == .matrix }),
                  let fn = PromFunctions.rangeFunction(name) else { return nil }
            var param = 0.0
            if args.count > 1, case .number(let p) = args[mi == 0 ? 1 : 0] { param = p }
            let rows = gridRows(name, fn, vs, range: range, param: param)
            try chargeCells(rows.count)
            return .vector(rows)
        }
        switch name {
        case "time": return .scalar((0..<n).map { Double(stepTime($0)) / 1000 })
        case "pi": return .scalar([Double](repeating: .pi, count: n))
        case "vector":
            let v = try scalarMatrix(args[0])
            var row = MatrixRow(labels: .empty, steps: n)
            for k in 0..<n { row.set(k, v[k]) }
            return .vector([row])
        case "scalar":
            let rows = try vectorMatrix(args[0])
            return .scalar((0..<n).map { k in
                var found: Double?, count = 0
                for r in rows where r.present[k] { count += 1; found = r.values[k] }
                return count == 1 ? found! : .nan
            })
        case "round":
            let rows = try vectorMatrix(args[0])
            let nearest = args.count > 1 ? try scalarMatrix(args[1]) : [Double](repeating: 1, count: n)
            return .vector(mapped(rows) { PromFunctions.round($0, toNearest: nearest[$1]) })
        case "clamp", "clamp_min", "clamp_max":
            let rows = try vectorMatrix(args[0])
            let lo = name == "clamp_max" ? [Double](repeating: -.infinity, count: n) : try scalarMatrix(args[1])
            let hi = name == "clamp" ? try scalarMatrix(args[2]) : name == "clamp_max" ? try scalarMatrix(args[1]) : [Double](repeating: .infinity, count: n)
            var out = mapped(rows) { x, k in PromFunctions.clamp(x, lo[k], hi[k]) }
            if name == "clamp" {
                for k in 0..<n where hi[k] < lo[k] { for i in out.indices { out[i].present[k] = false } }
            }
            return .vector(out)
        default:
            if let f = PromFunctions.calendar(name) {
                guard let arg = args.first else {
                    var row = MatrixRow(labels: .empty, steps: n)
                    for k in 0..<n { row.set(k, f(Double(stepTime(k) / 1000))) }
                    return .vector([row])
                }
                return .vector(mapped(try vectorMatrix(arg)) { x, _ in f(x) })
            }
            guard let f = PromFunctions.elementwise(name) else { return nil }
            return .vector(mapped(try vectorMatrix(args[0])) { x, _ in f(x) })
        }
    }

    /// The aggregations without a parameter; nil for `topk`, `bottomk`, `quantile`, `count_values`.
    private func aggregateMatrix(_ agg: Aggregation) throws -> StepMatrix? {
        guard agg.parameter == nil else { return nil }
        let rows = try vectorMatrix(agg.expr)
        let n = stepCount
        // Per group (in order of appearance): its labels and its accumulator at every step.
        var index: [Int: Int] = [:]
        var groups: [(labels: Labels, steps: [Accumulator])] = []
        for r in rows {
            let key = group(agg, r.labels)
            let gi: Int
            if let i = index[key.id] { gi = i } else {
                try chargeCells(1)
                gi = groups.count
                index[key.id] = gi
                groups.append((key.labels, [Accumulator](repeating: Accumulator(), count: n)))
            }
            // Members in the order the step-by-step form adds them, step by step.
            for k in 0..<n where r.present[k] { groups[gi].steps[k].add(agg.op, r.values[k]) }
        }
        return .vector(groups.map { g in
            var row = MatrixRow(labels: g.labels, steps: n)
            for k in 0..<n where g.steps[k].count > 0 { row.set(k, g.steps[k].result(agg.op)) }
            return row
        })
    }

    // MARK: Binary operators

    private func binaryMatrix(_ b: BinaryExpr) throws -> StepMatrix {
        let l = try matrix(b.lhs), r = try matrix(b.rhs)
        let n = stepCount
        switch (l, r) {
        case (.scalar(let x), .scalar(let y)):
            return .scalar((0..<n).map { k in
                let (v, keep) = Self.apply(b.op, x[k], y[k])
                return b.op.isComparison ? (keep ? 1 : 0) : v
            })
        case (.vector(let v), .scalar(let s)): return .vector(vectorScalarMatrix(b, v, s, swap: false))
        case (.scalar(let s), .vector(let v)): return .vector(vectorScalarMatrix(b, v, s, swap: true))
        case (.vector(let x), .vector(let y)):
            switch b.op {
            case .and, .or, .unless: return .vector(setOperationMatrix(b, x, y))
            default: return .vector(try vectorVectorMatrix(b, x, y))
            }
        }
    }

    private func vectorScalarMatrix(_ b: BinaryExpr, _ rows: [MatrixRow], _ s: [Double], swap: Bool) -> [MatrixRow] {
        var out = rows
        for i in out.indices {
            if Self.dropsName(b.op) || b.returnBool { out[i].labels = dropName(out[i].labels) }
            for k in 0..<s.count where out[i].present[k] {
                let x = out[i].values[k]
                var (value, keep) = swap ? Self.apply(b.op, s[k], x) : Self.apply(b.op, x, s[k])
                if b.op.isComparison && swap { value = x }
                if b.returnBool { value = keep ? 1 : 0; keep = true }
                if keep { out[i].values[k] = value } else { out[i].present[k] = false }
            }
        }
        return out.filter(\.any)
    }

    private func setOperationMatrix(_ b: BinaryExpr, _ lhs: [MatrixRow], _ rhs: [MatrixRow]) -> [MatrixRow] {
        let n = stepCount
        // Per signature, the steps at which a side has a series of it.
        func presence(_ rows: [MatrixRow]) -> [Int: [Bool]] {
            var out: [Int: [Bool]] = [:]
            for r in rows {
                let sig = signature(b, r.labels).id
                var p = out[sig] ?? [Bool](repeating: false, count: n)
                for k in 0..<n where r.present[k] { p[k] = true }
                out[sig] = p
            }
            return out
        }
        let none = [Bool](repeating: false, count: n)
        func filtered(_ rows: [MatrixRow], by other: [Int: [Bool]], keepIfThere: Bool) -> [MatrixRow] {
            rows.compactMap { r in
                var r = r
                let there = other[signature(b, r.labels).id] ?? none
                for k in 0..<n where r.present[k] && there[k] != keepIfThere { r.present[k] = false }
                return r.any ? r : nil
            }
        }
        switch b.op {
        case .and: return filtered(lhs, by: presence(rhs), keepIfThere: true)
        case .unless: return filtered(lhs, by: presence(rhs), keepIfThere: false)
        default: return lhs + filtered(rhs, by: presence(lhs), keepIfThere: false)
        }
    }

    private func vectorVectorMatrix(_ b: BinaryExpr, _ lhs: [MatrixRow], _ rhs: [MatrixRow]) throws -> [MatrixRow] {
        let n = stepCount
        let swapped = b.cardinality == .oneToMany
        let many = swapped ? rhs : lhs, one = swapped ? lhs : rhs
        // Per signature, the rows of the "one" side; two of them present at one step is an error there.
        var oneRows: [Int: [Int]] = [:]
        for (i, r) in one.enumerated() { oneRows[signature(b, r.labels).id, default: []].append(i) }
        for (_, list) in oneRows where list.count > 1 {
            for k in 0..<n {
                let here = list.filter { one[$0].present[k] }
                if here.count > 1 {
                    throw Self.duplicateOnOneSide(signature(b, one[here[0]].labels).labels, swapped: swapped, one[here[0]].labels, one[here[1]].labels)
                }
            }
        }
        // Output rows by (many row, one row): the result's labels depend on both at most.
        var out: [MatrixRow] = []
        var outIndex: [Int: Int] = [:] // one row → output row, for the many row being done
        // Per signature and step: one-to-one, whether matched already; else the result label sets made.
        var matchedOnce: [Int: [Bool]] = [:]
        var matchedSets: [Int: [Set<Int>]] = [:]
        for m in many {
            let sig = signature(b, m.labels).id
            guard let candidates = oneRows[sig] else { continue }
            outIndex.removeAll(keepingCapacity: true)
            for k in 0..<n where m.present[k] {
                guard let oi = candidates.first(where: { one[$0].present[k] }) else { continue }
                let o = one[oi]
                guard let r = match(b, swapped: swapped, m.labels, m.values[k], o.labels, o.values[k]) else { continue }
                if b.cardinality == .oneToOne {
                    if matchedOnce[sig]?[k] == true { throw Self.manyToOneNotExplicit }
                    matchedOnce[sig, default: [Bool](repeating: false, count: n)][k] = true
                } else if !matchedSets[sig, default: [Set<Int>](repeating: [], count: n)][k].insert(r.id).inserted {
                    throw Self.matchesNotUnique
                }
                let ri: Int
                if let i = outIndex[oi] { ri = i } else {
                    try chargeCells(1)
                    ri = out.count
                    outIndex[oi] = ri
                    out.append(MatrixRow(labels: r.labels, steps: n))
                }
                out[ri].set(k, r.value)
            }
        }
        return out
    }
}
