import TwinCore

/// PromQL text from a syntax tree, as Prometheus 2.42 writes it: `String()` of its parser's nodes for
/// one line, and `Prettify` (what `/api/v1/format_query` answers) breaking expressions longer than 100
/// characters over indented lines.
public enum PromQLPrinter {
    /// The expression on one line (Prometheus' `String()`).
    public static func string(_ e: Expr) -> String {
        switch e {
        case .number(let v): return number(v)
        case .string(let s): return quote(s)
        case .vector(let vs): return selector(vs, modifiers: true)
        case .matrix(let vs, let range): return selector(vs, modifiers: false) + "[\(duration(range))]" + modifiers(vs.at, vs.offset)
        case .subquery(let sq): return string(sq.expr) + subquerySuffix(sq)
        case .call(let name, let args, _): return name + "(" + args.map(string).joined(separator: ", ") + ")"
        case .aggregate(let a): return aggregatePrefix(a) + "(" + (a.parameter.map { string($0) + ", " } ?? "") + string(a.expr) + ")"
        case .binary(let b): return string(b.lhs) + " " + binaryInfix(b) + " " + string(b.rhs)
        case .unaryMinus(let x): return "-" + string(x)
        case .paren(let x): return "(" + string(x) + ")"
        }
    }

    /// The expression formatted as Prometheus' `Prettify`: what fits in 100 characters stays on one line.
    public static func pretty(_ e: Expr, level: Int = 0) -> String {
        let indent = String(repeating: "  ", count: level)
        let flat = string(e)
        if flat.count <= 100 { return indent + flat }
        switch e {
        case .aggregate(let a):
            var s = indent + aggregatePrefix(a) + "(\n"
            if let p = a.parameter { s += pretty(p, level: level + 1) + ",\n" }
            return s + pretty(a.expr, level: level + 1) + "\n" + indent + ")"
        case .binary(let b):
            return pretty(b.lhs, level: level + 1) + "\n" + indent + binaryInfix(b) + "\n" + pretty(b.rhs, level: level + 1)
        case .call(let name, let args, _):
            var s = indent + name + "(\n"
            for (i, a) in args.enumerated() { s += pretty(a, level: level + 1) + (i < args.count - 1 ? "," : "") + "\n" }
            return s + indent + ")"
        case .subquery(let sq): return pretty(sq.expr, level: level) + subquerySuffix(sq)
        case .paren(let x): return indent + "(\n" + pretty(x, level: level + 1) + "\n" + indent + ")"
        case .unaryMinus(let x):
            let child = pretty(x, level: level)
            return indent + "-" + child.drop { $0 == " " || $0 == "\n" }
        default: return indent + flat
        }
    }

    static func aggregatePrefix(_ a: Aggregation) -> String {
        if a.without { return a.op.rawValue + " without (" + a.grouping.joined(separator: ", ") + ") " }
        if !a.grouping.isEmpty { return a.op.rawValue + " by (" + a.grouping.joined(separator: ", ") + ") " }
        return a.op.rawValue
    }

    static func binaryInfix(_ b: BinaryExpr) -> String {
        var s = b.op.rawValue + (b.returnBool ? " bool" : "")
        if let labels = b.matchingLabels, !labels.isEmpty || b.on {
            s += (b.on ? " on (" : " ignoring (") + labels.joined(separator: ", ") + ")"
            if b.cardinality == .manyToOne || b.cardinality == .oneToMany {
                s += (b.cardinality == .manyToOne ? " group_left (" : " group_right (") + b.include.joined(separator: ", ") + ")"
            }
        }
        return s
    }

    static func subquerySuffix(_ sq: Subquery) -> String {
        "[\(duration(sq.range)):\(sq.step == 0 ? "" : duration(sq.step))]" + modifiers(sq.at, sq.offset)
    }

    /// A selector with its matchers sorted as text, the name's own equality matcher left out.
    static func selector(_ vs: VectorSelector, modifiers withModifiers: Bool) -> String {
        let name = vs.name ?? ""
        let matchers = vs.matchers.filter { !($0.name == Labels.metricName && $0.op == .equal && $0.value == name) }
            .map { $0.name + $0.op.rawValue + quote($0.value) }.sorted()
        let base = matchers.isEmpty ? name : name + "{" + matchers.joined(separator: ",") + "}"
        return withModifiers ? base + modifiers(vs.at, vs.offset) : base
    }

    static func modifiers(_ at: AtModifier?, _ offset: Int64) -> String {
        var s = ""
        switch at {
        case .time(let t)?: s += " @ " + fixed3(t)
        case .start?: s += " @ start()"
        case .end?: s += " @ end()"
        case nil: break
        }
        if offset > 0 { s += " offset " + duration(offset) } else if offset < 0 { s += " offset -" + duration(-offset) }
        return s
    }

    /// Milliseconds as seconds with three decimals (Go's `%.3f`).
    static func fixed3(_ ms: Int64) -> String {
        let sign = ms < 0 ? "-" : ""
        let m = ms.magnitude
        let frac = String(m % 1000)
        return sign + String(m / 1000) + "." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    /// Prometheus' `model.Duration` text: `1h30m`, `90d` (years and weeks only when exact), `0s`.
    public static func duration(_ ms: Int64) -> String {
        guard ms != 0 else { return "0s" }
        var rest = ms.magnitude
        var out = ms < 0 ? "-" : ""
        for (unit, size, exact) in [("y", UInt64(31_536_000_000), true), ("w", 604_800_000, true), ("d", 86_400_000, false),
                                    ("h", 3_600_000, false), ("m", 60_000, false), ("s", 1000, false), ("ms", 1, false)] {
            if exact && rest % size != 0 { continue }
            let v = rest / size
            if v > 0 { out += "\(v)\(unit)"; rest -= v * size }
        }
        return out
    }

    /// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        return PromNumber.format(v)
    }

    /// Go's `%q`: double quotes, backslash escapes for quotes, backslashes and control characters.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{0B}": out += "\\v"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let h = String(u.value, radix: 16)
                    out += "\\x" + (h.count < 2 ? "0" : "") + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
