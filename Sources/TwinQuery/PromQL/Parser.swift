/// A recursive-descent PromQL parser. Errors carry the offset of the offending token and read like
/// Prometheus' own: `1:14: parse error: unexpected end of input`.
public struct PromQLParser {
    private let text: String
    private let tokens: [Token]
    private var p = 0
    private var selectors = 0
    /// Aggregations and binary operators numbered so far (their ``Aggregation/id``).
    private var nodes = 0
    /// Current nesting of parentheses, calls, aggregations and unary operators.
    private var nesting = 0

    /// The deepest expression tree accepted; evaluation recurses once per level.
    public static let maxDepth = 256

    /// Parses `text` into a type-checked expression.
    public static func parse(_ text: String) throws -> Expr {
        var parser = try PromQLParser(text)
        return try parser.parseQuery()
    }

    private init(_ text: String) throws {
        self.text = text
        do { tokens = try Lexer.tokenize(text) } catch let PromQLError.parse(pos, message) {
            throw Self.error(text, pos, message)
        }
    }

    /// `line:column: parse error: message`, columns counted in characters from 1.
    static func error(_ text: String, _ offset: Int, _ message: String) -> PromQLError {
        var line = 1, col = 1, seen = 0
        for ch in text.utf8 {
            if seen >= offset { break }
            if ch == 10 { line += 1; col = 1 } else if ch & 0xC0 != 0x80 { col += 1 }
            seen += 1
        }
        return .parse(position: offset, message: "\(line):\(col): parse error: \(message)")
    }

    private func fail(_ message: String, at pos: Int? = nil) -> PromQLError {
        Self.error(text, pos ?? tokens[p].position, message)
    }

    private var token: Token { tokens[p] }
    private mutating func advance() { if p < tokens.count - 1 { p += 1 } }

    private func isOp(_ s: String) -> Bool { token.kind == .op(s) }
    /// Whether the token is keyword `w` (given in lower case; keywords are case-insensitive).
    private func isWord(_ w: String) -> Bool {
        guard case .identifier(let x) = token.kind, x.utf8.count == w.utf8.count else { return false }
        return x == w || x.lowercased() == w
    }

    private mutating func expect(_ s: String, _ context: String) throws {
        guard isOp(s) else { throw fail("unexpected \(describe(token)) in \(context), expected \"\(s)\"") }
        advance()
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "end of input"
        case .identifier(let s): return "identifier \"\(s)\""
        case .number(let v): return "number \"\(v)\""
        case .duration: return "duration"
        case .string(let s): return "string \"\(s)\""
        case .op(let o): return "character \"\(o)\""
        }
    }

    mutating func parseQuery() throws -> Expr {
        if token.kind == .eof { throw fail("no expression found in input") }
        let e = try parseExpr(minPrecedence: 0)
        guard token.kind == .eof else { throw fail("unexpected \(describe(token))") }
        if Self.depth(e) > Self.maxDepth {
            throw fail("expression nested deeper than \(Self.maxDepth) levels; split it up", at: 0)
        }
        return e
    }

    /// The height of the tree, computed without recursion.
    static func depth(_ root: Expr) -> Int {
        var stack: [(Expr, Int)] = [(root, 1)]
        var deepest = 0
        while let (e, d) = stack.popLast() {
            deepest = max(deepest, d)
            if d > maxDepth { return d }
            for c in e.children { stack.append((c, d + 1)) }
        }
        return deepest
    }

    /// Counts a level of nesting, refusing absurd depths before the parser's own recursion gets deep.
    private mutating func enter() throws {
        nesting += 1
        if nesting > Self.maxDepth { throw fail("expression nested deeper than \(Self.maxDepth) levels; split it up") }
    }

    // MARK: Binary operators

    private static let precedence: [BinaryExpr.Op: Int] = [
        .or: 1, .and: 2, .unless: 2,
        .eq: 3, .ne: 3, .gt: 3, .lt: 3, .ge: 3, .le: 3,
        .add: 4, .sub: 4, .mul: 5, .div: 5, .mod: 5, .atan2: 5, .pow: 6,
    ]

    private func binaryOp() -> BinaryExpr.Op? {
        switch token.kind {
        case .op(let o): return BinaryExpr.Op(rawValue: o)
        case .identifier(let w):
            let l = w.lowercased()
            return ["and", "or", "unless", "atan2"].contains(l) ? BinaryExpr.Op(rawValue: l) : nil
        default: return nil
        }
    }

    private mutating func parseExpr(minPrecedence: Int) throws -> Expr {
        try enter()
        defer { nesting -= 1 }
        var lhs = try parseUnary()
        var chain = 0
        while let op = binaryOp(), let prec = Self.precedence[op], prec >= minPrecedence {
            let opPos = token.position
            chain += 1
            if chain > Self.maxDepth { throw fail("more than \(Self.maxDepth) operators in a row; split the expression up", at: opPos) }
            advance()
            var b = BinaryExpr(op: op, lhs: lhs, rhs: .number(0))
            nodes += 1
            b.id = nodes
            if isWord("bool") {
                guard op.isComparison else { throw fail("bool modifier can only be used on comparison operators") }
                b.returnBool = true
                advance()
            }
            if isWord("on") || isWord("ignoring") {
                b.on = isWord("on")
                advance()
                b.matchingLabels = try labelList()
                if isWord("group_left") || isWord("group_right") {
                    b.cardinality = isWord("group_left") ? .manyToOne : .oneToMany
                    advance()
                    if isOp("(") { b.include = try labelList() }
                }
            }
            // ^ is right-associative; everything else left-associative.
            b.rhs = try parseExpr(minPrecedence: op == .pow ? prec : prec + 1)
            try check(&b, at: opPos)
            b.type = b.lhs.type == .scalar && b.rhs.type == .scalar ? .scalar : .vector
            lhs = .binary(b)
        }
        return lhs
    }

    private func check(_ b: inout BinaryExpr, at pos: Int) throws {
        let lt = b.lhs.type, rt = b.rhs.type
        for t in [lt, rt] where t != .scalar && t != .vector {
            throw fail("binary expression must contain only scalar and instant vector types", at: pos)
        }
        if b.op.isSet {
            guard lt == .vector && rt == .vector else {
                throw fail("set operator \"\(b.op.rawValue)\" not allowed in binary scalar expression", at: pos)
            }
            if b.cardinality == .manyToOne || b.cardinality == .oneToMany {
                throw fail("no grouping allowed for \"\(b.op.rawValue)\" operation", at: pos)
            }
            b.cardinality = .manyToMany
        }
        if b.op.isComparison && lt == .scalar && rt == .scalar && !b.returnBool {
            throw fail("comparisons between scalars must use BOOL modifier", at: pos)
        }
        if (lt == .scalar || rt == .scalar) && b.matchingLabels != nil {
            throw fail("vector matching only allowed between instant vectors", at: pos)
        }
        if let on = b.matchingLabels, b.on, b.cardinality == .manyToOne || b.cardinality == .oneToMany {
            for l in b.include where on.contains(l) {
                throw fail("label \"\(l)\" must not occur in ON and GROUP clause at once", at: pos)
            }
        }
    }

    private mutating func parseUnary() throws -> Expr {
        if isOp("-") || isOp("+") {
            let neg = isOp("-")
            let pos = token.position
            advance()
            // Unary minus binds tighter than every binary operator but ^.
            let e = try parseExpr(minPrecedence: 6)
            guard e.type == .scalar || e.type == .vector else { throw fail("unary expression only allowed on expressions of type scalar or instant vector", at: pos) }
            if !neg { return e }
            if case .number(let v) = e { return .number(-v) }
            return .unaryMinus(e)
        }
        return try parsePostfix(try parsePrimary())
    }

    // MARK: Postfix: [range], [range:step], offset, @

    private mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            if isOp("[") {
                let open = token.position
                advance()
                guard case .duration(let range) = token.kind else { throw fail("unexpected \(describe(token)) in subquery or range selector, expected duration") }
                guard range > 0 else { throw fail("duration must be greater than 0") }
                advance()
                if isOp(":") {
                    advance()
                    var step: Int64 = 0
                    if case .duration(let s) = token.kind {
                        guard s > 0 else { throw fail("duration must be greater than 0") }
                        step = s
                        advance()
                    }
                    try expect("]", "subquery")
                    guard e.type == .vector || e.type == .scalar else { throw fail("subquery is only allowed on instant vector, got \(e.type.rawValue) instead", at: open) }
                    if case .subquery = e {} else if case .matrix = e { throw fail("subquery is only allowed on instant vector, got matrix instead", at: open) }
                    e = .subquery(Subquery(expr: e, range: range, step: step))
                } else {
                    try expect("]", "range selector")
                    guard case .vector(let vs) = e else {
                        throw fail("ranges only allowed for vector selectors", at: open)
                    }
                    e = .matrix(vs, range: range)
                }
                continue
            }
            if isWord("offset") {
                let pos = token.position
                advance()
                var sign: Int64 = 1
                if isOp("-") { sign = -1; advance() }
                guard case .duration(let d) = token.kind else { throw fail("unexpected \(describe(token)) in offset, expected duration") }
                advance()
                try setModifier(&e, at: pos) { vs in
                    guard vs.offset == 0 else { throw fail("offset may not be set multiple times", at: pos) }
                    vs.offset = sign * d
                } subquery: { sq in
                    guard sq.offset == 0 else { throw fail("offset may not be set multiple times", at: pos) }
                    sq.offset = sign * d
                }
                continue
            }
            if isOp("@") {
                let pos = token.position
                advance()
                let at: AtModifier
                var sign = 1.0
                if isOp("-") { sign = -1; advance() } else if isOp("+") { advance() }
                switch token.kind {
                case .number(let v):
                    let ms = (sign * v * 1000).rounded()
                    guard ms.isFinite, abs(ms) < 9.2e18 else { throw fail("timestamp out of bounds for @ modifier: \(v)") }
                    at = .time(Int64(ms))
                    advance()
                case .identifier(let w) where w == "start" || w == "end":
                    advance()
                    try expect("(", "@ modifier")
                    try expect(")", "@ modifier")
                    at = w == "start" ? .start : .end
                default:
                    throw fail("unexpected \(describe(token)) in @ modifier, expected timestamp")
                }
                try setModifier(&e, at: pos) { vs in
                    guard vs.at == nil else { throw fail("@ <timestamp> may not be set multiple times", at: pos) }
                    vs.at = at
                } subquery: { sq in
                    guard sq.at == nil else { throw fail("@ <timestamp> may not be set multiple times", at: pos) }
                    sq.at = at
                }
                continue
            }
            return e
        }
    }

    private func setModifier(_ e: inout Expr, at pos: Int, selector: (inout VectorSelector) throws -> Void, subquery: (inout Subquery) throws -> Void) throws {
        switch e {
        case .vector(var vs): try selector(&vs); e = .vector(vs)
        case .matrix(var vs, let r): try selector(&vs); e = .matrix(vs, range: r)
        case .subquery(var sq): try subquery(&sq); e = .subquery(sq)
        default: throw fail("offset and @ modifiers must be preceded by an instant vector selector, a range vector selector or a subquery", at: pos)
        }
    }

    // MARK: Primary expressions

    private mutating func parsePrimary() throws -> Expr {
        let t = token
        switch t.kind {
        case .number(let v):
            advance()
            return .number(v)
        case .string(let s):
            advance()
            return .string(s)
        case .duration:
            throw fail("unexpected duration, expected a number, a selector or a function")
        case .eof:
            throw fail("unexpected end of input")
        case .op("("):
            advance()
            let e = try parseExpr(minPrecedence: 0)
            try expect(")", "parenthesized expression")
            return .paren(e)
        case .op("{"):
            return .vector(try selector(name: nil, at: t.position))
        case .identifier(let word):
            let next = tokens[min(p + 1, tokens.count - 1)]
            if let op = Aggregation.Op(rawValue: word.lowercased()), next.kind == .op("(") || next.kind == .identifier("by") || next.kind == .identifier("without") {
                return try aggregation(op)
            }
            if next.kind == .op("(") {
                return try call(word, at: t.position)
            }
            if ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "atan2"].contains(word.lowercased()) {
                throw fail("unexpected \(word)")
            }
            advance()
            return .vector(try selector(name: word, at: t.position))
        case .op(let o):
            throw fail("unexpected character: '\(o)'")
        }
    }

    private mutating func selector(name: String?, at pos: Int) throws -> VectorSelector {
        var matchers: [Matcher] = []
        if let name { matchers.append(try Matcher(name: "__name__", op: .equal, value: name)) }
        if isOp("{") {
            advance()
            while !isOp("}") {
                guard case .identifier(let label) = token.kind else { throw fail("unexpected \(describe(token)) in label matching, expected label") }
                let lpos = token.position
                advance()
                guard case .op(let o) = token.kind, let op = MatchOp(rawValue: o) else {
                    throw fail("unexpected \(describe(token)) in label matching, expected label matching operator")
                }
                advance()
                guard case .string(let value) = token.kind else { throw fail("unexpected \(describe(token)) in label matching, expected string") }
                advance()
                do { matchers.append(try Matcher(name: label, op: op, value: value)) } catch let PromQLError.parse(_, m) { throw fail(m, at: lpos) }
                if label == "__name__", name != nil { throw fail("metric name must not be set twice: \"\(name!)\" or \"\(value)\"", at: lpos) }
                if isOp(",") { advance() } else if !isOp("}") {
                    throw fail("unexpected \(describe(token)) in label matching, expected \",\" or \"}\"")
                }
            }
            advance()
        }
        // A selector must not match everything, nor the empty series.
        guard matchers.contains(where: { !$0.matches("") }) else {
            throw fail("vector selector must contain at least one non-empty matcher", at: pos)
        }
        defer { selectors += 1 }
        return VectorSelector(name: name, matchers: matchers, id: selectors)
    }

    private mutating func labelList() throws -> [String] {
        try expect("(", "grouping")
        var out: [String] = []
        while !isOp(")") {
            guard case .identifier(let l) = token.kind else { throw fail("unexpected \(describe(token)) in grouping opts, expected label") }
            out.append(l)
            advance()
            if isOp(",") { advance() } else if !isOp(")") { throw fail("unexpected \(describe(token)) in grouping opts, expected \",\" or \")\"") }
        }
        advance()
        return out
    }

    private mutating func aggregation(_ op: Aggregation.Op) throws -> Expr {
        let pos = token.position
        advance()
        var grouping: [String] = []
        var without = false
        var groupingGiven = false
        if isWord("by") || isWord("without") {
            without = isWord("without")
            advance()
            grouping = try labelList()
            groupingGiven = true
        }
        let args = try arguments("aggregation")
        if !groupingGiven, isWord("by") || isWord("without") {
            without = isWord("without")
            advance()
            grouping = try labelList()
        }
        let want = op.hasParameter ? 2 : 1
        guard args.count == want else { throw fail("wrong number of arguments for aggregate expression provided, expected \(want), got \(args.count)", at: pos) }
        var agg = Aggregation(op: op, expr: args[want - 1], grouping: grouping, without: without)
        nodes += 1
        agg.id = nodes
        guard agg.expr.type == .vector else { throw fail("expected type instant vector in aggregation expression, got \(typeName(agg.expr.type))", at: pos) }
        if op.hasParameter {
            agg.parameter = args[0]
            let wantType: ValueType = op == .countValues ? .string : .scalar
            guard args[0].type == wantType else { throw fail("expected type \(typeName(wantType)) in aggregation parameter, got \(typeName(args[0].type))", at: pos) }
        }
        return .aggregate(agg)
    }

    /// `( expr, expr, ... )` of a call or an aggregation.
    private mutating func arguments(_ context: String) throws -> [Expr] {
        try expect("(", context)
        var args: [Expr] = []
        while !isOp(")") {
            args.append(try parseExpr(minPrecedence: 0))
            if isOp(",") { advance() } else if !isOp(")") { throw fail("unexpected \(describe(token)) in \(context), expected \",\" or \")\"") }
        }
        advance()
        return args
    }

    private mutating func call(_ name: String, at pos: Int) throws -> Expr {
        guard let sig = PromFunctions.signature(name) else { throw fail("unknown function with name \"\(name)\"", at: pos) }
        advance()
        let args = try arguments("function call")
        let minArgs = sig.args.count - sig.optional
        let maxArgs = sig.variadic ? Int.max : sig.args.count
        guard args.count >= minArgs, args.count <= maxArgs else {
            throw fail("expected \(sig.optional > 0 || sig.variadic ? "at least \(minArgs)" : "\(minArgs)") argument(s) in call to \"\(name)\", got \(args.count)", at: pos)
        }
        for (i, a) in args.enumerated() {
            let want = sig.args[min(i, sig.args.count - 1)]
            guard a.type == want else {
                throw fail("expected type \(typeName(want)) in call to function \"\(name)\", got \(typeName(a.type))", at: pos)
            }
        }
        return .call(name: name, args: args, position: pos)
    }

    private func typeName(_ t: ValueType) -> String {
        switch t {
        case .vector: return "instant vector"
        case .matrix: return "range vector"
        case .scalar: return "scalar"
        case .string: return "string"
        }
    }
}
