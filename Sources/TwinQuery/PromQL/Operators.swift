import Foundation
import TwinCore

extension Evaluation {
    // MARK: Aggregation

    func aggregate(_ agg: Aggregation, at t: Int64) throws -> StepValue {
        let input = try vector(agg.expr, at: t)
        var param = 0.0
        var valueLabel = ""
        if agg.op == .countValues {
            valueLabel = try string(agg.parameter!, at: t)
            guard Self.isValidLabelName(valueLabel) else { throw PromQLError.execution("invalid label name \"\(valueLabel)\"") }
        } else if let p = agg.parameter { param = try scalar(p, at: t) }
        func groupOf(_ s: Sample) -> (labels: Labels, id: Int) {
            if agg.op == .countValues { return intern(Self.grouping(agg, s.labels).setting(valueLabel, Self.formatValue(s.value))) }
            return self.group(agg, s.labels)
        }

        struct Group {
            var labels: Labels
            var acc = Accumulator()
            var members: [Sample] = []
            var values: [Double] = []
        }
        var index: [Int: Int] = [:]
        var groups: [Group] = []

        for s in input {
            let key = groupOf(s)
            let gi: Int
            if let i = index[key.id] { gi = i } else {
                gi = groups.count
                index[key.id] = gi
                groups.append(Group(labels: key.labels))
            }
            groups[gi].acc.add(agg.op, s.value)
            switch agg.op {
            case .topk, .bottomk: groups[gi].members.append(s)
            case .quantile: groups[gi].values.append(s.value)
            default: break
            }
        }

        var out: [Sample] = []
        for g in groups {
            switch agg.op {
            case .quantile: out.append(Sample(labels: g.labels, value: PromFunctions.quantile(param, g.values), t: t))
            case .topk, .bottomk:
                // k < 1 (or NaN) selects nothing; +Inf everything.
                guard param >= 1 else { continue }
                let k = param >= Double(Int.max) ? Int.max : Int(param)
                let top = agg.op == .topk
                // Which of several equal values Prometheus keeps depends on its heap: the series come in
                // label order (its selectors'), fill a heap of k, and each later one replaces the heap's root
                // when strictly better. The same heap here picks the same series; the result is then sorted.
                let members = g.members.sorted { Labels.promLess($0.labels, $1.labels) }
                var heap = PromHeap(top: top)
                for m in members {
                    if heap.items.count < k { heap.push(m); continue }
                    let root = heap.items[0].value
                    if (top ? root < m.value : root > m.value) || (root.isNaN && !m.value.isNaN) {
                        heap.items[0] = m
                        if k > 1 { heap.fix(0) }
                    }
                }
                out += heap.items.sorted { a, b in
                    if a.value.isNaN != b.value.isNaN { return b.value.isNaN }
                    if !a.value.isNaN, a.value != b.value { return top ? a.value > b.value : a.value < b.value }
                    return Labels.promLess(a.labels, b.labels)
                }
            default: out.append(Sample(labels: g.labels, value: g.acc.result(agg.op), t: t))
            }
        }
        return .vector(out)
    }

    /// The group of `labels` in aggregation `agg` (remembered per input, see ``derive(_:node:_:_:_:)``).
    func group(_ agg: Aggregation, _ labels: Labels) -> (labels: Labels, id: Int) {
        derive(.group, node: agg.id, labels) { Self.grouping(agg, labels) }
    }

    /// The labels `by (...)` keeps or `without (...)` leaves (with the name).
    static func grouping(_ agg: Aggregation, _ l: Labels) -> Labels {
        agg.without ? l.filtered(Set(agg.grouping).union([Labels.metricName]), keep: false) : l.filtered(Set(agg.grouping), keep: true)
    }

    /// A float as Prometheus prints it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
    static func formatValue(_ v: Double) -> String { PromNumber.format(v) }

    // MARK: Binary operators

    func binary(_ b: BinaryExpr, at t: Int64) throws -> StepValue {
        let l = try eval(b.lhs, at: t), r = try eval(b.rhs, at: t)
        switch (l, r) {
        case (.scalar(let x), .scalar(let y)):
            let (v, keep) = Self.apply(b.op, x, y)
            return .scalar(b.op.isComparison ? (keep ? 1 : 0) : v)
        case (.vector(let v), .scalar(let s)):
            return .vector(vectorScalar(b, v, s, swap: false, at: t))
        case (.scalar(let s), .vector(let v)):
            return .vector(vectorScalar(b, v, s, swap: true, at: t))
        case (.vector(let x), .vector(let y)):
            switch b.op {
            case .and, .or, .unless: return .vector(setOperation(b, x, y))
            default: return .vector(try vectorVector(b, x, y, at: t))
            }
        default:
            throw PromQLError.execution("binary operators need scalars or instant vectors")
        }
    }

    /// The result value and, for comparisons, whether the element is kept.
    static func apply(_ op: BinaryExpr.Op, _ x: Double, _ y: Double) -> (Double, Bool) {
        switch op {
        case .add: return (x + y, true)
        case .sub: return (x - y, true)
        case .mul: return (x * y, true)
        case .div: return (x / y, true)
        case .pow: return (Foundation.pow(x, y), true)
        case .mod: return (fmod(x, y), true)
        case .atan2: return (Foundation.atan2(x, y), true)
        case .eq: return (x, x == y)
        case .ne: return (x, x != y)
        case .gt: return (x, x > y)
        case .lt: return (x, x < y)
        case .ge: return (x, x >= y)
        case .le: return (x, x <= y)
        case .and, .or, .unless: return (x, true)
        }
    }

    /// Arithmetic drops the metric name; comparisons and (in Prometheus 2.42) `atan2` keep it.
    static func dropsName(_ op: BinaryExpr.Op) -> Bool {
        switch op {
        case .add, .sub, .mul, .div, .mod, .pow: return true
        default: return false
        }
    }

    private func vectorScalar(_ b: BinaryExpr, _ v: [Sample], _ s: Double, swap: Bool, at t: Int64) -> [Sample] {
        var out: [Sample] = []
        out.reserveCapacity(v.count)
        for e in v {
            var (value, keep) = swap ? Self.apply(b.op, s, e.value) : Self.apply(b.op, e.value, s)
            if b.op.isComparison && swap { value = e.value }
            if b.returnBool { value = keep ? 1 : 0; keep = true }
            guard keep else { continue }
            out.append(Sample(labels: Self.dropsName(b.op) || b.returnBool ? dropName(e.labels) : e.labels, value: value, t: t))
        }
        return out
    }

    /// The labels two sides are matched on, and their number.
    func signature(_ b: BinaryExpr, _ l: Labels) -> (labels: Labels, id: Int) {
        derive(.signature, node: b.id, l) {
            if let names = b.matchingLabels {
                return b.on ? l.filtered(Set(names), keep: true) : l.filtered(Set(names).union([Labels.metricName]), keep: false)
            }
            return l.droppingName
        }
    }

    private func setOperation(_ b: BinaryExpr, _ lhs: [Sample], _ rhs: [Sample]) -> [Sample] {
        let rightSigs = Set(rhs.map { signature(b, $0.labels).id })
        switch b.op {
        case .and: return lhs.filter { rightSigs.contains(signature(b, $0.labels).id) }
        case .unless: return lhs.filter { !rightSigs.contains(signature(b, $0.labels).id) }
        default:
            let leftSigs = Set(lhs.map { signature(b, $0.labels).id })
            return lhs + rhs.filter { !leftSigs.contains(signature(b, $0.labels).id) }
        }
    }

    private func vectorVector(_ b: BinaryExpr, _ lhsIn: [Sample], _ rhsIn: [Sample], at t: Int64) throws -> [Sample] {
        // With group_right the right side is the "many" side: swap, compute, swap the operands back.
        let swapped = b.cardinality == .oneToMany
        let many = swapped ? rhsIn : lhsIn, one = swapped ? lhsIn : rhsIn
        var oneBySig: [Int: Sample] = [:]
        oneBySig.reserveCapacity(one.count)
        for s in one {
            let sig = signature(b, s.labels)
            if let dup = oneBySig[sig.id] { throw Self.duplicateOnOneSide(sig.labels, swapped: swapped, dup.labels, s.labels) }
            oneBySig[sig.id] = s
        }
        // Per signature, the result label sets made so far (one-to-one: the signature alone).
        var matched: [Int: Set<Int>] = [:]
        var out: [Sample] = []
        for m in many {
            let sig = signature(b, m.labels).id
            guard let o = oneBySig[sig] else { continue }
            guard let r = match(b, swapped: swapped, m.labels, m.value, o.labels, o.value) else { continue }
            if b.cardinality == .oneToOne {
                if matched[sig] != nil { throw Self.manyToOneNotExplicit }
                matched[sig] = []
            } else if !matched[sig, default: []].insert(r.id).inserted {
                throw Self.matchesNotUnique
            }
            out.append(Sample(labels: r.labels, value: r.value, t: t))
        }
        return out
    }

    /// A "many" element (labels, value) matched with a "one" element: the result's value, labels and their
    /// number, or nil when a comparison drops it. Both evaluation forms match through this.
    func match(_ b: BinaryExpr, swapped: Bool, _ m: Labels, _ mv: Double, _ o: Labels, _ ov: Double) -> (value: Double, labels: Labels, id: Int)? {
        let (vl, vr) = swapped ? (ov, mv) : (mv, ov)
        var (value, keep) = Self.apply(b.op, vl, vr)
        if b.returnBool { value = keep ? 1 : 0; keep = true }
        guard keep else { return nil }
        let metric = derive(.result, node: b.id, m, b.include.isEmpty ? nil : o) {
            let l = resultLabels(b, m, o)
            return b.returnBool ? l.droppingName : l
        }
        return (value, metric.labels, metric.id)
    }

    static let manyToOneNotExplicit = PromQLError.execution("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
    static let matchesNotUnique = PromQLError.execution("multiple matches for labels: grouping labels must ensure unique matches")

    static func duplicateOnOneSide(_ sig: Labels, swapped: Bool, _ a: Labels, _ b: Labels) -> PromQLError {
        .execution("found duplicate series for the match group \(text(sig)) on the \(swapped ? "left" : "right") hand-side of the operation: [\(text(a)), \(text(b))];many-to-many matching not allowed: matching labels must be unique on one side")
    }

    func resultLabels(_ b: BinaryExpr, _ many: Labels, _ one: Labels) -> Labels {
        var l = Self.dropsName(b.op) ? many.droppingName : many
        if b.cardinality == .oneToOne, let names = b.matchingLabels {
            l = b.on ? l.filtered(Set(names), keep: true) : l.filtered(Set(names), keep: false)
        }
        for name in b.include { l = l.setting(name, one.value(name)) }
        return l
    }

    static func text(_ l: Labels) -> String {
        "{" + l.pairs.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ", ") + "}"
    }
}

/// The running state of one group of an aggregation at one step — the arithmetic of Prometheus 2.42,
/// shared by both evaluation forms so that they add in the same order and agree bit for bit.
struct Accumulator {
    var value = 0.0
    var mean = 0.0
    var count = 0

    mutating func add(_ op: Aggregation.Op, _ x: Double) {
        guard count > 0 else {
            count = 1
            mean = x
            switch op {
            case .stddev, .stdvar: value = 0
            case .count, .countValues, .group: value = 1
            default: value = x
            }
            return
        }
        count += 1
        let n = Double(count)
        switch op {
        case .sum: value += x
        case .avg:
            if mean.isInfinite {
                if x.isInfinite && (mean > 0) == (x > 0) { break }
                if !x.isInfinite && !x.isNaN { break }
            }
            mean += x / n - mean / n
        case .max: if value < x || value.isNaN { value = x }
        case .min: if value > x || value.isNaN { value = x }
        case .count, .countValues: value += 1
        case .stddev, .stdvar:
            let delta = x - mean
            mean += delta / n
            value += delta * (x - mean)
        default: break
        }
    }

    /// The group's value (for the operators that end with one).
    func result(_ op: Aggregation.Op) -> Double {
        switch op {
        case .avg: return mean
        case .stddev: return (value / Double(count)).squareRoot()
        case .stdvar: return value / Double(count)
        default: return value
        }
    }
}

/// Go's container/heap over samples with Prometheus' orders for topk (`vectorByValueHeap`: the lowest value
/// at the root, NaN lowest) and bottomk (`vectorByReverseValueHeap`: the highest at the root, NaN first), so
/// ties resolve as in Prometheus.
struct PromHeap {
    var items: [Sample] = []
    let top: Bool

    init(top: Bool) { self.top = top }

    func less(_ i: Int, _ j: Int) -> Bool {
        let a = items[i].value, b = items[j].value
        if a.isNaN { return true }
        return top ? a < b : a > b
    }

    mutating func push(_ s: Sample) {
        items.append(s)
        up(items.count - 1)
    }

    mutating func fix(_ i: Int) {
        if !down(i, items.count) { up(i) }
    }

    private mutating func up(_ start: Int) {
        var j = start
        while j > 0 {
            let i = (j - 1) / 2
            guard less(j, i) else { break }
            items.swapAt(i, j)
            j = i
        }
    }

    private mutating func down(_ i0: Int, _ n: Int) -> Bool {
        var i = i0
        while true {
            let j1 = 2 * i + 1
            guard j1 < n else { break }
            var j = j1
            if j1 + 1 < n, less(j1 + 1, j1) { j = j1 + 1 }
            guard less(j, i) else { break }
            items.swapAt(i, j)
            i = j
        }
        return i > i0
    }
}
