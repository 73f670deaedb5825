import Yams

/// A configuration refused: where (file, line, column) and why.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    /// 1-based; 0 when the error concerns the whole file.
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        (self.file, self.line, self.column, self.message) = (file, line, column, message)
    }

    /// `FILE:LINE:COLUMN: message`, as compilers print it.
    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// A YAML document read as a tree of mappings, sequences and scalars, with the position of every node so
/// that an error can name its line. Unknown keys are errors (a misspelt `for:` must not silently mean
/// "fire at once"), and the tree is walked under a node budget: YAML aliases can make a small file
/// expand to billions of nodes, and a configuration is refused long before that.
struct ConfigTree {
    let file: String
    /// Nodes still allowed to be visited.
    private var budget: Int

    static let maxBytes = 4 << 20

    init(file: String, maxNodes: Int = 200_000) {
        self.file = file
        budget = maxNodes
    }

    /// Parses `text` into its root node (nil for an empty document).
    func root(_ text: String) throws -> Node? {
        guard text.utf8.count <= Self.maxBytes else { throw error(at: nil, "file larger than \(Self.maxBytes >> 20) MiB") }
        do {
            return try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw ConfigError(file: file, line: Self.line(of: e), column: 0, message: "not valid YAML: \(Self.problem(of: e))")
        } catch {
            throw ConfigError(file: file, line: 0, column: 0, message: "not valid YAML: \(error)")
        }
    }

    func error(at node: Node?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, message: message)
    }

    /// Whether the node budget is spent (every later visit fails).
    var exhausted: Bool { budget < 0 }

    /// Counts one node against the budget.
    mutating func visit(_ node: Node) throws {
        budget -= 1
        guard budget >= 0 else { throw error(at: node, "document too large (aliases expand it past the node limit)") }
    }

    /// The pairs of a mapping, each key checked against `allowed` (in the order written). `what` names the
    /// mapping in errors ("rule", "group").
    mutating func mapping(_ node: Node, _ what: String, allowed: [String]) throws -> [(String, Node, Node)] {
        try visit(node)
        guard case .mapping(let m) = node else { throw error(at: node, "\(what) must be a mapping (key: value lines)") }
        var out: [(String, Node, Node)] = []
        var seen = Set<String>()
        for (k, v) in m {
            try visit(k)
            guard case .scalar(let s) = k else { throw error(at: k, "\(what): keys must be plain words") }
            guard allowed.contains(s.string) else {
                throw error(at: k, "\(what): unknown field '\(s.string)' (allowed: \(allowed.joined(separator: ", ")))")
            }
            guard seen.insert(s.string).inserted else { throw error(at: k, "\(what): field '\(s.string)' given twice") }
            out.append((s.string, k, v))
        }
        return out
    }

    /// A mapping of free-form string keys to string values (labels, annotations).
    mutating func stringMap(_ node: Node, _ what: String) throws -> [(String, Node, String, Node)] {
        try visit(node)
        if case .scalar(let s) = node, s.string.isEmpty || s.tag.description.hasSuffix(":null") { return [] }
        guard case .mapping(let m) = node else { throw error(at: node, "\(what) must be a mapping of names to text") }
        var out: [(String, Node, String, Node)] = []
        var seen = Set<String>()
        for (k, v) in m {
            let key = try string(k, "\(what) name")
            guard seen.insert(key).inserted else { throw error(at: k, "\(what): '\(key)' given twice") }
            out.append((key, k, try string(v, "\(what) '\(key)'"), v))
        }
        return out
    }

    /// The elements of a sequence (an empty or null node is an empty sequence).
    mutating func sequence(_ node: Node, _ what: String) throws -> [Node] {
        try visit(node)
        if case .scalar(let s) = node, s.string.isEmpty || s.tag.description.hasSuffix(":null") { return [] }
        guard case .sequence(let seq) = node else { throw error(at: node, "\(what) must be a list (lines starting with '-')") }
        return Array(seq)
    }

    /// A scalar's text (numbers and booleans as written).
    mutating func string(_ node: Node, _ what: String) throws -> String {
        try visit(node)
        guard case .scalar(let s) = node else { throw error(at: node, "\(what) must be text, not a \(Self.shape(node))") }
        return s.string
    }

    /// A duration such as `5m`, `1h30m`, `500ms` (Prometheus' units: ms s m h d w y).
    mutating func duration(_ node: Node, _ what: String) throws -> Int64 {
        let text = try string(node, what)
        guard let ms = Self.parseDuration(text) else {
            throw error(at: node, "\(what): cannot read duration '\(text)' (use forms like 30s, 5m, 1h30m, 1d)")
        }
        return ms
    }

    /// A non-negative integer.
    mutating func integer(_ node: Node, _ what: String) throws -> Int {
        let text = try string(node, what)
        guard let n = Int(text), n >= 0 else { throw error(at: node, "\(what): '\(text)' is not a whole number ≥ 0") }
        return n
    }

    /// A number (`0.8`, `80%` for 0.8).
    mutating func number(_ node: Node, _ what: String) throws -> Double {
        let text = try string(node, what)
        if text.hasSuffix("%"), let p = Double(text.dropLast()), p.isFinite { return p / 100 }
        guard let v = Double(text), v.isFinite else { throw error(at: node, "\(what): '\(text)' is not a number") }
        return v
    }

    /// `true` or `false`.
    mutating func bool(_ node: Node, _ what: String) throws -> Bool {
        switch try string(node, what) {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let t: throw error(at: node, "\(what): '\(t)' is not true or false")
        }
    }

    /// Prometheus' duration syntax (model.ParseDuration): units largest first, each at most once, whole
    /// numbers; `0` alone is zero. Nil when not a duration.
    static func parseDuration(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let units: [(String, Int64)] = [("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                                        ("m", 60_000), ("s", 1000), ("ms", 1)]
        var rest = Substring(text), total: Int64 = 0, next = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let n = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            guard let i = units[next...].firstIndex(where: { $0.0 == unit }) else { return nil }
            let (product, overflow) = n.multipliedReportingOverflow(by: units[i].1)
            guard !overflow, total <= .max - product else { return nil }
            total += product
            next = i + 1
        }
        return total
    }

    static func shape(_ node: Node) -> String {
        switch node {
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .scalar: return "scalar"
        case .alias: return "alias"
        }
    }

    static func line(of e: YamlError) -> Int {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        case .duplicatedKeysInMapping(_, let context): return context.mark.line
        default: return 0
        }
    }

    static func problem(of e: YamlError) -> String {
        switch e {
        case .scanner(let c, let p, _, _), .parser(let c, let p, _, _), .composer(let c, let p, _, _):
            return c.map { "\(p) (\($0.text))" } ?? p
        case .reader(let p, _, _, _): return p
        case .duplicatedKeysInMapping(let d, _): return "keys given twice: \(d.joined(separator: ", "))"
        default: return "\(e)"
        }
    }
}
