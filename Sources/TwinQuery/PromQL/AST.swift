/// The syntax tree of a PromQL expression, as the parser builds it and the engine evaluates it.
public indirect enum Expr: Sendable {
    case number(Double)
    case string(String)
    case vector(VectorSelector)
    case matrix(VectorSelector, range: Int64)
    case subquery(Subquery)
    case call(name: String, args: [Expr], position: Int)
    case aggregate(Aggregation)
    case binary(BinaryExpr)
    case unaryMinus(Expr)
    case paren(Expr)

    /// The direct subexpressions.
    public var children: [Expr] {
        switch self {
        case .number, .string, .vector, .matrix: return []
        case .subquery(let s): return [s.expr]
        case .call(_, let args, _): return args
        case .aggregate(let a): return [a.expr] + (a.parameter.map { [$0] } ?? [])
        case .binary(let b): return [b.lhs, b.rhs]
        case .unaryMinus(let e), .paren(let e): return [e]
        }
    }

    /// The type of value the expression yields.
    public var type: ValueType {
        switch self {
        case .number: return .scalar
        case .string: return .string
        case .vector: return .vector
        case .matrix, .subquery: return .matrix
        case .call(let name, _, _): return PromFunctions.signature(name)?.returns ?? .vector
        case .aggregate: return .vector
        case .binary(let b): return b.type
        case .unaryMinus(let e), .paren(let e): return e.type
        }
    }
}

/// The four kinds of PromQL values.
public enum ValueType: String, Sendable {
    case scalar, vector, matrix, string
}

/// `=`, `!=`, `=~`, `!~`.
public enum MatchOp: String, Sendable {
    case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~"
}

/// One label matcher. Regular expressions are anchored at both ends, as in Prometheus.
public struct Matcher: Sendable {
    public var name: String
    public var op: MatchOp
    public var value: String
    let regex: AnchoredRegex?

    public init(name: String, op: MatchOp, value: String) throws {
        self.name = name
        self.op = op
        self.value = value
        regex = op == .regex || op == .notRegex ? try AnchoredRegex(value) : nil
    }

    /// Whether the matcher runs a regular expression (worth remembering its verdicts per value).
    var isRegex: Bool { regex?.isRegex ?? false }

    /// Whether a label value (the empty string when the label is absent) satisfies the matcher.
    public func matches(_ v: String) -> Bool {
        switch op {
        case .equal: return v == value
        case .notEqual: return v != value
        case .regex: return regex!.matches(v)
        case .notRegex: return !regex!.matches(v)
        }
    }
}

/// Where a selector's data comes from: its matchers plus the time modifiers.
public struct VectorSelector: Sendable {
    public var name: String?
    public var matchers: [Matcher]
    /// `offset`, in milliseconds (negative offsets look ahead).
    public var offset: Int64 = 0
    /// `@ t` in milliseconds; `@ start()` / `@ end()` are resolved to the query's start and end.
    public var at: AtModifier?
    /// The selector's index in the query, set by the parser; the engine keys fetched data by it.
    public var id: Int = 0
}

/// The `@` modifier.
public enum AtModifier: Sendable {
    case time(Int64), start, end
}

/// `expr[range:step] offset o @ t`.
public struct Subquery: Sendable {
    public var expr: Expr
    public var range: Int64
    /// Zero means the default evaluation interval.
    public var step: Int64
    public var offset: Int64 = 0
    public var at: AtModifier?
}

/// `op by|without (labels) (params, expr)`.
public struct Aggregation: Sendable {
    public enum Op: String, Sendable, CaseIterable {
        case sum, avg, min, max, count, group, stddev, stdvar, topk, bottomk, quantile
        case countValues = "count_values"
        var hasParameter: Bool { self == .topk || self == .bottomk || self == .quantile || self == .countValues }
    }
    public var op: Op
    public var expr: Expr
    public var parameter: Expr?
    public var grouping: [String] = []
    public var without = false
    /// The node's index among the query's aggregations and operators, set by the parser; the engine keys
    /// label sets it derives by it.
    public var id: Int = 0
}

/// `lhs op [bool] [on|ignoring (labels)] [group_left|group_right (labels)] rhs`.
public struct BinaryExpr: Sendable {
    public enum Op: String, Sendable {
        case add = "+", sub = "-", mul = "*", div = "/", mod = "%", pow = "^", atan2
        case eq = "==", ne = "!=", gt = ">", lt = "<", ge = ">=", le = "<="
        case and, or, unless
        var isComparison: Bool { [.eq, .ne, .gt, .lt, .ge, .le].contains(self) }
        var isSet: Bool { self == .and || self == .or || self == .unless }
    }
    public enum Cardinality: Sendable { case oneToOne, manyToOne, oneToMany, manyToMany }
    public var op: Op
    public var lhs: Expr
    public var rhs: Expr
    public var returnBool = false
    /// Labels of `on(...)` (`on` true) or `ignoring(...)`; nil when neither was given.
    public var matchingLabels: [String]?
    public var on = false
    public var cardinality: Cardinality = .oneToOne
    /// Labels of `group_left(...)` / `group_right(...)` copied from the "one" side.
    public var include: [String] = []
    /// The node's index among the query's aggregations and operators, set by the parser (see
    /// ``Aggregation/id``).
    public var id: Int = 0

    /// Scalar when both sides are scalars, else vector; set by the parser once the sides are known, so
    /// asking costs nothing however long a chain of operators is.
    public internal(set) var type: ValueType = .vector
}
