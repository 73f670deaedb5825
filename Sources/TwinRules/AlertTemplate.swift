import Foundation
import TwinCore

/// The part of Go's text/template that Prometheus alert labels and annotations use, with Prometheus'
/// functions: `{{ $labels.instance }}`, `{{ $value | humanizePercentage }}`, `{{ printf "%.1f" $value }}`,
/// `{{ if gt $value 0.9 }}...{{ else }}...{{ end }}`, `{{ index $labels "job" }}`, trim markers `{{-`/`-}}`
/// and comments. Everything else — `query` and the other functions that read data, `range`, variables,
/// `template` — is refused when the rule file is checked, so a template can only format what the alert
/// already carries.
public struct AlertTemplate: Sendable {
    /// What a template may read: the alert's labels, its value, and the twin's external labels and URL.
    public struct Data: Sendable {
        public var labels: [String: String]
        public var value: Double
        public var externalLabels: [String: String]
        public var externalURL: String
        public init(labels: [String: String], value: Double, externalLabels: [String: String] = [:], externalURL: String = "") {
            (self.labels, self.value, self.externalLabels, self.externalURL) = (labels, value, externalLabels, externalURL)
        }
    }

    /// A template refused when read, or a failure when expanded.
    public struct TemplateError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    indirect enum Piece: Sendable {
        case text(String)
        case action(Pipeline)
        case conditional(Pipeline, then: [Piece], otherwise: [Piece])
    }

    struct Pipeline: Sendable { var commands: [Command] }
    struct Command: Sendable { var function: String?; var args: [Operand] }
    indirect enum Operand: Sendable {
        /// A variable (`$labels`, `$value`, `$` as "") or the dot (`.`), followed by field names.
        case field(root: String, path: [String])
        case string(String)
        case number(Double)
        case bool(Bool)
        case pipeline(Pipeline)
    }

    let pieces: [Piece]
    /// The template's text as written.
    public let source: String

    /// The functions a template may call (Prometheus' formatting functions and Go's comparisons).
    static let functions: Set<String> = [
        "humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "printf", "print",
        "title", "toUpper", "toLower", "stripPort", "index", "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
    ]
    /// Prometheus functions refused with a reason (they query the store or reach outside the alert).
    static let refused: [String: String] = [
        "query": "templates may not run queries; put what the annotation needs in the rule's expression or labels",
        "first": "templates may not run queries", "label": "templates may not run queries", "value": "templates may not run queries",
        "sortByLabel": "templates may not run queries", "strvalue": "templates may not run queries",
        "tmpl": "templates may not include other templates", "template": "templates may not include other templates",
    ]

    public init(_ text: String) throws {
        source = text
        var p = TemplateParser(text: Array(text.unicodeScalars))
        pieces = try p.parseAll()
    }

    /// Whether the text has no actions (expanding it gives it back).
    public var isPlain: Bool { pieces.allSatisfy { if case .text = $0 { return true } else { return false } } }

    /// The expanded text, or Prometheus' `<error expanding template: ...>` when an action fails.
    public func expand(_ data: Data) -> String {
        do {
            var out = ""
            try Self.render(pieces, data, into: &out)
            return out
        } catch {
            return "<error expanding template: \(error)>"
        }
    }

    // MARK: Evaluation

    enum Value {
        case string(String), number(Double), bool(Bool), map([String: String]), none

        var truthy: Bool {
            switch self {
            case .string(let s): return !s.isEmpty
            case .number(let d): return d != 0
            case .bool(let b): return b
            case .map(let m): return !m.isEmpty
            case .none: return false
            }
        }

        /// As Go's `fmt.Sprint` prints it.
        var printed: String {
            switch self {
            case .string(let s): return s
            case .number(let d): return GoFormat.shortest(d)
            case .bool(let b): return b ? "true" : "false"
            case .map(let m): return "map[" + m.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ") + "]"
            case .none: return "<no value>"
            }
        }

        func number() throws -> Double {
            switch self {
            case .number(let d): return d
            case .string(let s):
                guard let d = Double(s.trimmingCharacters(in: .whitespaces)) else { throw TemplateError(message: "cannot convert \"\(s)\" to a number") }
                return d
            case .bool(let b): return b ? 1 : 0
            default: throw TemplateError(message: "cannot convert \(printed) to a number")
            }
        }
    }

    static func render(_ pieces: [Piece], _ data: Data, into out: inout String) throws {
        for piece in pieces {
            switch piece {
            case .text(let t): out += t
            case .action(let p): out += try run(p, data).printed
            case .conditional(let c, let a, let b): try render(try run(c, data).truthy ? a : b, data, into: &out)
            }
        }
    }

    static func run(_ p: Pipeline, _ data: Data) throws -> Value {
        var carried: Value?
        for cmd in p.commands {
            var args = try cmd.args.map { try operand($0, data) }
            if let c = carried { args.append(c) }
            if let f = cmd.function { carried = try call(f, args) } else {
                guard args.count == 1 else { throw TemplateError(message: "a value cannot take arguments") }
                carried = args[0]
            }
        }
        return carried ?? .none
    }

    static func operand(_ o: Operand, _ data: Data) throws -> Value {
        switch o {
        case .string(let s): return .string(s)
        case .number(let d): return .number(d)
        case .bool(let b): return .bool(b)
        case .pipeline(let p): return try run(p, data)
        case .field(let root, let path):
            var v: Value
            switch root {
            case "$labels": v = .map(data.labels)
            case "$externalLabels": v = .map(data.externalLabels)
            case "$value": v = .number(data.value)
            case "$externalURL": v = .string(data.externalURL)
            default: // the dot: .Labels, .Value, .ExternalLabels, .ExternalURL
                guard let first = path.first else { return .none }
                switch first {
                case "Labels": v = .map(data.labels)
                case "ExternalLabels": v = .map(data.externalLabels)
                case "Value": v = .number(data.value)
                case "ExternalURL": v = .string(data.externalURL)
                default: throw TemplateError(message: "can't evaluate field \(first)")
                }
                return try walk(v, path.dropFirst())
            }
            return try walk(v, path[...])
        }
    }

    static func walk(_ v: Value, _ path: ArraySlice<String>) throws -> Value {
        guard let name = path.first else { return v }
        guard case .map(let m) = v else { throw TemplateError(message: "can't evaluate field \(name) in a \(v.printed)") }
        guard let s = m[name] else { return .string("") } // Prometheus runs templates with missingkey=zero
        return try walk(.string(s), path.dropFirst())
    }

    static func call(_ f: String, _ a: [Value]) throws -> Value {
        func arity(_ n: Int) throws {
            guard a.count == n else { throw TemplateError(message: "wrong number of args for \(f): want \(n) got \(a.count)") }
        }
        switch f {
        case "humanize": try arity(1); return .string(GoFormat.humanize(try a[0].number()))
        case "humanize1024": try arity(1); return .string(GoFormat.humanize1024(try a[0].number()))
        case "humanizeDuration": try arity(1); return .string(GoFormat.humanizeDuration(try a[0].number()))
        case "humanizePercentage": try arity(1); return .string(GoFormat.g(try a[0].number() * 100, 4) + "%")
        case "humanizeTimestamp": try arity(1); return .string(GoFormat.timestamp(try a[0].number()))
        case "title": try arity(1); return .string(a[0].printed.split(separator: " ", omittingEmptySubsequences: false).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " "))
        case "toUpper": try arity(1); return .string(a[0].printed.uppercased())
        case "toLower": try arity(1); return .string(a[0].printed.lowercased())
        case "stripPort":
            try arity(1)
            let s = a[0].printed
            if s.hasPrefix("["), let close = s.firstIndex(of: "]") { return .string(String(s[s.index(after: s.startIndex)..<close])) }
            if s.filter({ $0 == ":" }).count == 1, let colon = s.firstIndex(of: ":") { return .string(String(s[..<colon])) }
            return .string(s)
        case "len":
            try arity(1)
            if case .map(let m) = a[0] { return .number(Double(m.count)) }
            return .number(Double(a[0].printed.count))
        case "index":
            try arity(2)
            guard case .map(let m) = a[0] else { throw TemplateError(message: "index of a non-map") }
            return m[a[1].printed].map(Value.string) ?? .string("")
        case "printf":
            guard case .string(let format)? = a.first else { throw TemplateError(message: "printf needs a format string first") }
            return .string(GoFormat.printf(format, Array(a.dropFirst())))
        case "print": return .string(a.map(\.printed).joined())
        case "not": try arity(1); return .bool(!a[0].truthy)
        case "and":
            guard !a.isEmpty else { throw TemplateError(message: "and needs arguments") }
            return a.first { !$0.truthy } ?? a[a.count - 1]
        case "or":
            guard !a.isEmpty else { throw TemplateError(message: "or needs arguments") }
            return a.first { $0.truthy } ?? a[a.count - 1]
        case "eq", "ne", "lt", "le", "gt", "ge":
            try arity(2)
            let order: Int
            if case .string(let x) = a[0], case .string(let y) = a[1] { order = x < y ? -1 : (x == y ? 0 : 1) }
            else if case .bool(let x) = a[0], case .bool(let y) = a[1] {
                guard f == "eq" || f == "ne" else { throw TemplateError(message: "invalid type for comparison") }
                order = x == y ? 0 : 1
            } else {
                let x = try a[0].number(), y = try a[1].number()
                order = x < y ? -1 : (x == y ? 0 : 1)
            }
            switch f {
            case "eq": return .bool(order == 0)
            case "ne": return .bool(order != 0)
            case "lt": return .bool(order < 0)
            case "le": return .bool(order <= 0)
            case "gt": return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        default: throw TemplateError(message: "function \"\(f)\" not defined")
        }
    }
}

/// Reads a template's text into pieces (the grammar of Go's text/template, restricted as
/// ``AlertTemplate`` says).
private struct TemplateParser {
    let text: [Unicode.Scalar]
    var i = 0
    /// Whether the next text piece loses its leading white space (the action before ended with `-}}`).
    var trimNext = false
    static let maxDepth = 32

    init(text: [Unicode.Scalar]) { self.text = text }

    typealias Piece = AlertTemplate.Piece
    typealias TemplateError = AlertTemplate.TemplateError

    mutating func parseAll() throws -> [Piece] {
        let (pieces, stop) = try parseList(depth: 0)
        if let stop { throw TemplateError(message: "unexpected {{\(stop)}}") }
        return pieces
    }

    /// Pieces up to the end of the text or an `else`/`end` action (returned).
    mutating func parseList(depth: Int) throws -> ([Piece], String?) {
        guard depth <= Self.maxDepth else { throw TemplateError(message: "conditions nested deeper than \(Self.maxDepth)") }
        var out: [Piece] = []
        while i < text.count {
            var j = i
            while j + 1 < text.count, !(text[j] == "{" && text[j + 1] == "{") { j += 1 }
            if j + 1 >= text.count { j = text.count }
            var literal = String(String.UnicodeScalarView(text[i..<j]))
            if trimNext { literal = String(literal.drop { $0.isWhitespace }); trimNext = false }
            i = j
            var trimBefore = false
            if i < text.count {
                i += 2
                if i + 1 < text.count, text[i] == "-", text[i + 1] == " " || text[i + 1] == "\t" || text[i + 1] == "\n" { trimBefore = true; i += 1 }
            }
            if trimBefore { while let last = literal.last, last.isWhitespace { literal.removeLast() } }
            if !literal.isEmpty { out.append(.text(literal)) }
            guard i < text.count else { break }
            let body = try actionBody()
            let words = body.trimmingCharacters(in: .whitespacesAndNewlines)
            if words.hasPrefix("/*") { continue } // a comment
            var lexer = TemplateLexer(Array(words.unicodeScalars))
            let tokens = try lexer.tokens()
            guard let head = tokens.first else { throw TemplateError(message: "missing value for command") }
            if case .word(let w) = head {
                switch w {
                case "else", "end":
                    guard tokens.count == 1 else { throw TemplateError(message: "unexpected words after {{\(w)}}") }
                    return (out, w)
                case "if":
                    var tp = TokenParser(tokens: Array(tokens.dropFirst()))
                    let cond = try tp.action(depth: depth)
                    let (then, stop) = try parseList(depth: depth + 1)
                    var otherwise: [Piece] = []
                    if stop == "else" {
                        let (e, stop2) = try parseList(depth: depth + 1)
                        guard stop2 == "end" else { throw TemplateError(message: "{{if}} without {{end}}") }
                        otherwise = e
                    } else if stop != "end" { throw TemplateError(message: "{{if}} without {{end}}") }
                    out.append(.conditional(cond, then: then, otherwise: otherwise))
                    continue
                case "range", "with", "define", "block", "template", "break", "continue":
                    throw TemplateError(message: "{{\(w)}} is not supported in alert templates (only values, functions and if/else)")
                default: break
                }
            }
            var tp = TokenParser(tokens: tokens)
            out.append(.action(try tp.action(depth: depth)))
        }
        return (out, nil)
    }

    /// The text of an action up to `}}` (honouring quotes), consuming `-}}`'s trim.
    mutating func actionBody() throws -> String {
        var j = i
        var quote: Unicode.Scalar?
        while j + 1 < text.count {
            let c = text[j]
            if let q = quote {
                if c == "\\" && q == "\"" { j += 2; continue }
                if c == q { quote = nil }
            } else if c == "\"" || c == "`" || c == "'" {
                quote = c
            } else if c == "}" && text[j + 1] == "}" {
                var end = j
                if end > i, text[end - 1] == "-", end - 1 > i, text[end - 2].properties.isWhitespace { end -= 1; trimNext = true }
                let body = String(String.UnicodeScalarView(text[i..<end]))
                i = j + 2
                return body
            }
            j += 1
        }
        throw TemplateError(message: "unclosed action (a '{{' without '}}')")
    }
}

private enum TemplateToken: Equatable {
    case word(String), field(root: String, path: [String]), string(String), number(Double), pipe, open, close
}

private struct TemplateLexer {
    let s: [Unicode.Scalar]
    var i = 0
    init(_ s: [Unicode.Scalar]) { self.s = s }

    static func isIdent(_ c: Unicode.Scalar) -> Bool { c.properties.isAlphabetic || c == "_" || ("0"..."9").contains(c) }

    mutating func tokens() throws -> [TemplateToken] {
        var out: [TemplateToken] = []
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace { i += 1; continue }
            switch c {
            case "|": out.append(.pipe); i += 1
            case "(": out.append(.open); i += 1
            case ")": out.append(.close); i += 1
            case "\"": out.append(.string(try quoted()))
            case "`":
                i += 1
                let start = i
                while i < s.count, s[i] != "`" { i += 1 }
                guard i < s.count else { throw AlertTemplate.TemplateError(message: "unterminated raw string") }
                out.append(.string(String(String.UnicodeScalarView(s[start..<i]))))
                i += 1
            case "$", ".":
                var root = ""
                if c == "$" {
                    let start = i
                    i += 1
                    while i < s.count, Self.isIdent(s[i]) { i += 1 }
                    root = String(String.UnicodeScalarView(s[start..<i]))
                    if i < s.count, s[i] == ":" { throw AlertTemplate.TemplateError(message: "variables cannot be declared in alert templates") }
                }
                var path: [String] = []
                while i < s.count, s[i] == "." {
                    i += 1
                    let start = i
                    while i < s.count, Self.isIdent(s[i]) { i += 1 }
                    if i > start { path.append(String(String.UnicodeScalarView(s[start..<i]))) } else if !path.isEmpty || root != "" {
                        throw AlertTemplate.TemplateError(message: "bad field name")
                    }
                }
                let known = ["", "$labels", "$value", "$externalLabels", "$externalURL", "$"]
                guard known.contains(root) else { throw AlertTemplate.TemplateError(message: "undefined variable \"\(root)\" (known: $labels, $value, $externalLabels, $externalURL)") }
                out.append(.field(root: root == "$" ? "" : root, path: path))
            default:
                if ("0"..."9").contains(c) || c == "-" || c == "+" {
                    let start = i
                    i += 1
                    while i < s.count, Self.isIdent(s[i]) || s[i] == "." || ((s[i] == "-" || s[i] == "+") && (s[i - 1] == "e" || s[i - 1] == "E")) { i += 1 }
                    let t = String(String.UnicodeScalarView(s[start..<i]))
                    guard let d = Double(t) else { throw AlertTemplate.TemplateError(message: "bad number \(t)") }
                    out.append(.number(d))
                } else if Self.isIdent(c) {
                    let start = i
                    while i < s.count, Self.isIdent(s[i]) { i += 1 }
                    out.append(.word(String(String.UnicodeScalarView(s[start..<i]))))
                } else {
                    throw AlertTemplate.TemplateError(message: "unexpected \"\(c)\" in action")
                }
            }
        }
        return out
    }

    mutating func quoted() throws -> String {
        i += 1
        var out = ""
        while i < s.count {
            let c = s[i]
            if c == "\"" { i += 1; return out }
            if c == "\\" {
                i += 1
                guard i < s.count else { break }
                switch s[i] {
                case "n": out += "\n"
                case "t": out += "\t"
                case "\\": out += "\\"
                case "\"": out += "\""
                default: throw AlertTemplate.TemplateError(message: "unsupported escape \\\(s[i])")
                }
            } else {
                out.unicodeScalars.append(c)
            }
            i += 1
        }
        throw AlertTemplate.TemplateError(message: "unterminated quoted string")
    }
}

private struct TokenParser {
    let tokens: [TemplateToken]
    var i = 0
    init(tokens: [TemplateToken]) { self.tokens = tokens }

    mutating func pipeline(depth: Int) throws -> AlertTemplate.Pipeline {
        guard depth <= TemplateParser.maxDepth else { throw AlertTemplate.TemplateError(message: "expression nested too deeply") }
        var commands: [AlertTemplate.Command] = []
        while true {
            commands.append(try command(depth: depth))
            guard i < tokens.count else { break }
            if tokens[i] == .close { break }
            guard tokens[i] == .pipe else { throw AlertTemplate.TemplateError(message: "unexpected token in pipeline") }
            i += 1
        }
        return AlertTemplate.Pipeline(commands: commands)
    }

    /// A whole action's pipeline: every token used.
    mutating func action(depth: Int) throws -> AlertTemplate.Pipeline {
        let p = try pipeline(depth: depth)
        guard i == tokens.count else { throw AlertTemplate.TemplateError(message: "unexpected \")\" in action") }
        return p
    }

    mutating func command(depth: Int) throws -> AlertTemplate.Command {
        var function: String?
        var args: [AlertTemplate.Operand] = []
        while i < tokens.count, tokens[i] != .pipe, tokens[i] != .close {
            let t = tokens[i]
            i += 1
            switch t {
            case .word(let w):
                if w == "true" || w == "false" { args.append(.bool(w == "true")); continue }
                if w == "nil" { throw AlertTemplate.TemplateError(message: "nil is not a command") }
                guard function == nil, args.isEmpty else { throw AlertTemplate.TemplateError(message: "function \"\(w)\" must come first in its command (use parentheses)") }
                if let reason = AlertTemplate.refused[w] { throw AlertTemplate.TemplateError(message: "function \"\(w)\": \(reason)") }
                guard AlertTemplate.functions.contains(w) else { throw AlertTemplate.TemplateError(message: "function \"\(w)\" not defined") }
                function = w
            case .field(let root, let path): args.append(.field(root: root, path: path))
            case .string(let s): args.append(.string(s))
            case .number(let d): args.append(.number(d))
            case .open:
                let inner = try pipeline(depth: depth + 1)
                guard i < tokens.count, tokens[i] == .close else { throw AlertTemplate.TemplateError(message: "unclosed left paren") }
                i += 1
                args.append(.pipeline(inner))
            case .pipe, .close: break
            }
        }
        guard function != nil || !args.isEmpty else { throw AlertTemplate.TemplateError(message: "missing value for command") }
        return AlertTemplate.Command(function: function, args: args)
    }
}
