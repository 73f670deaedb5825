import Foundation
import TwinCore

extension Evaluation {
    /// Evaluates a function call at `t`.
    func call(_ name: String, _ args: [Expr], at t: Int64) throws -> StepValue {
        // Functions of a range vector: one output sample per input series.
        if let mi = args.firstIndex(where: { $0.type == .matrix }) {
            let param = try args.indices.contains(mi == 0 ? 1 : 0) && args[mi == 0 ? 1 : 0].type == .scalar ? scalar(args[mi == 0 ? 1 : 0], at: t) : 0
            var windows: [(series: RangeSeries, from: Int64, to: Int64)]
            switch args[mi] {
            case .matrix(let vs, let range) where name != "absent_over_time":
                // A constant (or no) scalar argument: the whole grid at once.
                let constant = args.count == 1 || args.allSatisfy { if case .number = $0 { return true }; return $0.type == .matrix }
                if constant, let fn = PromFunctions.rangeFunction(name),
                   let samples = gridValues(name, fn, vs, range: range, param: param, at: t) { return .vector(samples) }
                let hi = effectiveTime(vs.at, t).minus(vs.offset)
                windows = rangeSelect(vs, range: range, at: t).map { ($0, hi.minus(range), hi) }
            case .matrix(let vs, let range):
                let hi = effectiveTime(vs.at, t).minus(vs.offset)
                windows = rangeSelect(vs, range: range, at: t).map { ($0, hi.minus(range), hi) }
            case .subquery(let sq):
                windows = try subquery(sq, at: t)
            default:
                throw PromQLError.execution("function \(name) needs a range vector selector or a subquery")
            }
            if name == "absent_over_time" {
                return .vector(windows.isEmpty ? [Sample(labels: absentLabels(args[mi]), value: 1, t: t)] : [])
            }
            if name == "holt_winters" {
                let sf = try scalar(args[1], at: t), tf = try scalar(args[2], at: t)
                // Prometheus checks the factors for each series it smooths: no series, no error.
                if !windows.isEmpty {
                    if sf <= 0 || sf >= 1 { throw PromQLError.execution("invalid smoothing factor. Expected: 0 < sf < 1, got: \(String(format: "%f", sf))") }
                    if tf <= 0 || tf >= 1 { throw PromQLError.execution("invalid trend factor. Expected: 0 < tf < 1, got: \(String(format: "%f", tf))") }
                }
                return .vector(windows.compactMap { w in
                    PromFunctions.holtWinters(w.series.v, smoothing: sf, trend: tf).map { Sample(labels: w.series.nameless, value: $0, t: t) }
                })
            }
            guard let fn = PromFunctions.rangeFunction(name) else { throw PromQLError.execution("function \(name) is not implemented") }
            var out: [Sample] = []
            out.reserveCapacity(windows.count)
            for w in windows {
                guard let v = fn(w.series.t, w.series.v, w.from, w.to, t, param) else { continue }
                out.append(Sample(labels: name == "last_over_time" ? w.series.labels : w.series.nameless, value: v, t: t))
            }
            return .vector(out)
        }
        switch name {
        case "time": return .scalar(Double(t) / 1000)
        case "pi": return .scalar(Double.pi)
        case "histogram_count", "histogram_sum", "histogram_fraction":
            // Native histograms only: HostTwin stores floats, on which Prometheus returns nothing too.
            for a in args { _ = try eval(a, at: t) }
            return .vector([])
        case "vector": return .vector([Sample(labels: .empty, value: try scalar(args[0], at: t), t: t)])
        case "scalar":
            let v = try vector(args[0], at: t)
            return .scalar(v.count == 1 ? v[0].value : .nan)
        case "timestamp":
            var arg = args[0]
            while case .paren(let inner) = arg { arg = inner }
            let samples = try vector(arg, at: t)
            let direct: Bool
            if case .vector = arg { direct = true } else { direct = false }
            return .vector(samples.map { Sample(labels: dropName($0.labels), value: Double(direct ? $0.t : t) / 1000, t: t) })
        case "round":
            let nearest = args.count > 1 ? try scalar(args[1], at: t) : 1
            return .vector(try vector(args[0], at: t).map { Sample(labels: dropName($0.labels), value: PromFunctions.round($0.value, toNearest: nearest), t: t) })
        case "clamp", "clamp_min", "clamp_max":
            let v = try vector(args[0], at: t)
            let lo = name == "clamp_max" ? -Double.infinity : try scalar(args[1], at: t)
            let hi = name == "clamp" ? try scalar(args[2], at: t) : name == "clamp_max" ? try scalar(args[1], at: t) : .infinity
            if name == "clamp" && hi < lo { return .vector([]) }
            return .vector(v.map { Sample(labels: dropName($0.labels), value: PromFunctions.clamp($0.value, lo, hi), t: t) })
        case "label_replace": return .vector(try labelReplace(args, at: t))
        case "label_join": return .vector(try labelJoin(args, at: t))
        case "histogram_quantile": return .vector(try histogramQuantile(args, at: t))
        case "sort", "sort_desc":
            let v = try vector(args[0], at: t)
            let desc = name == "sort_desc"
            return .vector(v.sorted { a, b in
                if a.value.isNaN { return false }
                if b.value.isNaN { return true }
                return desc ? a.value > b.value : a.value < b.value
            })
        case "absent":
            return .vector(try vector(args[0], at: t).isEmpty ? [Sample(labels: absentLabels(args[0]), value: 1, t: t)] : [])
        default:
            if let f = PromFunctions.calendar(name) {
                // No argument: the evaluation time, `vector(time())`.
                guard let arg = args.first else { return .vector([Sample(labels: .empty, value: f(Double(t / 1000)), t: t)]) }
                return .vector(try vector(arg, at: t).map { Sample(labels: dropName($0.labels), value: f($0.value), t: t) })
            }
            guard let f = PromFunctions.elementwise(name) else { throw PromQLError.execution("function \(name) is not implemented") }
            return .vector(try vector(args[0], at: t).map { Sample(labels: dropName($0.labels), value: f($0.value), t: t) })
        }
    }

    /// The labels `absent` reports: the equality matchers of a plain selector argument.
    private func absentLabels(_ e: Expr) -> Labels {
        let vs: VectorSelector
        switch e {
        case .vector(let s), .matrix(let s, _): vs = s
        default: return .empty
        }
        var seen = Set<String>()
        var pairs: [Label] = []
        var dup = Set<String>()
        for m in vs.matchers where m.name != Labels.metricName {
            if !seen.insert(m.name).inserted { dup.insert(m.name) }
            if m.op == .equal { pairs.append(Label(m.name, m.value)) }
        }
        return Labels(pairs.filter { !dup.contains($0.name) })
    }

    private func labelReplace(_ args: [Expr], at t: Int64) throws -> [Sample] {
        let v = try vector(args[0], at: t)
        let dst = try string(args[1], at: t), repl = try string(args[2], at: t), src = try string(args[3], at: t), pattern = try string(args[4], at: t)
        let re: LinearRegex
        do { re = try LinearRegex(pattern) } catch {
            throw PromQLError.execution("invalid regular expression in label_replace(): \(pattern): \(error)")
        }
        guard Self.isValidLabelName(dst) else { throw PromQLError.execution("invalid destination label name in label_replace(): \(dst)") }
        var out: [Sample] = []
        out.reserveCapacity(v.count)
        for (k, s) in v.enumerated() {
            if k & 255 == 255 { try checkDeadline() }
            guard let groups = re.wholeMatchGroups(s.labels.value(src)) else { out.append(s); continue }
            out.append(Sample(labels: s.labels.setting(dst, Self.expand(repl, groups: groups, names: re.groupNames)), value: s.value, t: s.t))
        }
        return out
    }

    /// Go's `Regexp.Expand`, as Prometheus uses it: `$1`, `${1}`, `$name`, `${name}` (a name as long as
    /// possible: `$1x` is the group named `1x`), `$$` for a dollar; a group that is absent or took no part
    /// expands to nothing, and a malformed `$` stays as it is.
    static func expand(_ template: String, groups: [String?], names: [String: Int]) -> String {
        var out = ""
        var rest = Substring(template)
        func isNameChar(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            rest = rest[rest.index(after: dollar)...]
            if rest.first == "$" { out += "$"; rest = rest.dropFirst(); continue }
            var name: Substring
            if rest.first == "{" {
                let body = rest.dropFirst()
                guard let close = body.firstIndex(of: "}"), body.startIndex < close, body[..<close].allSatisfy(isNameChar) else { out += "$"; continue }
                name = body[..<close]
                rest = body[body.index(after: close)...]
            } else {
                name = rest.prefix(while: isNameChar)
                guard !name.isEmpty else { out += "$"; continue }
                rest = rest[name.endIndex...]
            }
            let index = name.allSatisfy(\.isNumber) ? (name.count < 9 ? Int(name) : nil) : names[String(name)]
            if let index, index < groups.count, let g = groups[index] { out += g }
        }
        return out + rest
    }

    static func isValidLabelName(_ s: String) -> Bool {
        guard let f = s.utf8.first, Lexer.isIdentStart(f), f != UInt8(ascii: ":") else { return false }
        return s.utf8.allSatisfy { Lexer.isIdentChar($0) && $0 != UInt8(ascii: ":") }
    }

    private func labelJoin(_ args: [Expr], at t: Int64) throws -> [Sample] {
        let v = try vector(args[0], at: t)
        let dst = try string(args[1], at: t), sep = try string(args[2], at: t)
        let srcs = try args.dropFirst(3).map { try string($0, at: t) }
        guard Self.isValidLabelName(dst) else { throw PromQLError.execution("invalid destination label name in label_join(): \(dst)") }
        return v.map { s in
            Sample(labels: s.labels.setting(dst, srcs.map { s.labels.value($0) }.joined(separator: sep)), value: s.value, t: s.t)
        }
    }

    private func histogramQuantile(_ args: [Expr], at t: Int64) throws -> [Sample] {
        let q = try scalar(args[0], at: t)
        var groups: [Labels: [(Double, Double)]] = [:]
        var order: [Labels] = []
        for s in try vector(args[1], at: t) {
            guard let le = Double(s.labels.value("le").replacingOccurrences(of: "+Inf", with: "inf")) else { continue }
            let key = s.labels.filtered([Labels.metricName, "le"], keep: false)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((le, s.value))
        }
        return order.map { Sample(labels: $0, value: PromFunctions.bucketQuantile(q, groups[$0]!), t: t) }
    }
}
