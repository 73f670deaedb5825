/// A regular expression in RE2's syntax (the one Prometheus uses), matched against a whole string in time
/// linear in the input: a Pike VM, as in RE2 and Go's `regexp`, with no backtracking, so no pattern can
/// take exponential time however it is written (`(a+)+$`, `(a|a)*b`).
///
/// Supported: literals and escapes (`\.`, `\n`, `\x41`, `\x{263a}`), `.`, classes (`[a-z]`, `[^0-9]`,
/// `[[:alpha:]]`, `\d \w \s` and their negations), groups (`(…)`, `(?:…)`, `(?P<name>…)`, `(?<name>…)`),
/// flags (`(?i)`, `(?s)`, `(?m)`, `(?U)`, and scoped `(?i:…)`), alternation, the quantifiers `* + ? {n}
/// {n,} {n,m}` and their lazy forms, and the assertions `^ $ \A \z \b \B`. Backreferences and
/// look-around are refused, as RE2 refuses them. Repeat counts are limited to 1,000 and a compiled
/// program to ``maxProgramSize`` instructions.
public struct LinearRegex: Sendable {
    /// A pattern that cannot be compiled, with the reason.
    public struct SyntaxError: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// The largest compiled program accepted (instructions).
    public static let maxProgramSize = 20_000

    public let pattern: String
    /// Groups, the whole match included (group 0).
    public let groupCount: Int
    /// Named groups' numbers.
    public let groupNames: [String: Int]
    private let program: [Inst]
    private let sets: [ScalarSet]

    public init(_ pattern: String, dotMatchesNewline: Bool = true) throws(SyntaxError) {
        var parser = Parser(Array(pattern.unicodeScalars), dotAll: dotMatchesNewline)
        let node = try parser.parseAll()
        var compiler = Compiler(sets: parser.sets)
        try compiler.emit(.save(0))
        try compiler.compile(node)
        try compiler.emit(.save(1))
        try compiler.emit(.match)
        self.pattern = pattern
        groupCount = parser.groupCount + 1
        groupNames = parser.groupNames
        program = compiler.program
        sets = compiler.sets
    }

    /// Whether the whole of `s` matches.
    public func wholeMatch(_ s: String) -> Bool { run(Array(s.unicodeScalars), captures: false) != nil }

    /// The groups of a whole match of `s` (nil when it does not match; a group that took no part is nil).
    public func wholeMatchGroups(_ s: String) -> [String?]? {
        let input = Array(s.unicodeScalars)
        guard let slots = run(input, captures: true) else { return nil }
        return (0..<groupCount).map { g in
            let a = slots[2 * g], b = slots[2 * g + 1]
            guard a >= 0, b >= a else { return nil }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: input[a..<b])
            return String(out)
        }
    }

    // MARK: The machine

    enum Assertion { case textStart, textEnd, lineStart, lineEnd, wordBoundary, notWordBoundary }

    enum Inst {
        case scalar(Unicode.Scalar)
        /// A scalar compared after simple case folding (the literal is stored folded).
        case foldedScalar(Unicode.Scalar)
        case set(Int)
        case split(Int, Int)
        case jump(Int)
        case save(Int)
        case assert(Assertion)
        case match
    }

    private struct Thread {
        var pc: Int
        var slots: [Int]
    }

    /// Runs the program over the whole input; the capture slots of the highest-priority whole match.
    private func run(_ input: [Unicode.Scalar], captures: Bool) -> [Int]? {
        let slotCount = captures ? 2 * groupCount : 0
        var current: [Thread] = [], next: [Thread] = []
        current.reserveCapacity(program.count)
        next.reserveCapacity(program.count)
        // The position each instruction was last added at, so a thread per instruction per position.
        var mark = [Int](repeating: -1, count: program.count)
        var stack: [Thread] = []
        var matched: [Int]?

        func add(_ list: inout [Thread], _ start: Thread, at pos: Int) {
            stack.append(start)
            while var t = stack.popLast() {
                while true {
                    if mark[t.pc] == pos { break }
                    mark[t.pc] = pos
                    switch program[t.pc] {
                    case .jump(let to): t.pc = to; continue
                    case .split(let a, let b):
                        stack.append(Thread(pc: b, slots: t.slots))
                        t.pc = a; continue
                    case .save(let n):
                        if n < t.slots.count { t.slots[n] = pos }
                        t.pc += 1; continue
                    case .assert(let a):
                        guard holds(a, input, pos) else { break }
                        t.pc += 1; continue
                    default:
                        list.append(t)
                    }
                    break
                }
            }
        }

        add(&current, Thread(pc: 0, slots: [Int](repeating: -1, count: slotCount)), at: 0)
        var pos = 0
        while !current.isEmpty {
            let c: Unicode.Scalar? = pos < input.count ? input[pos] : nil
            let folded = c.map(Self.fold)
            for t in current {
                switch program[t.pc] {
                case .match:
                    // Only a match at the end counts; threads after this one have lower priority.
                    if c == nil { matched = t.slots }
                case .scalar(let s): if c == s { add(&next, Thread(pc: t.pc + 1, slots: t.slots), at: pos + 1) }
                case .foldedScalar(let s): if folded == s { add(&next, Thread(pc: t.pc + 1, slots: t.slots), at: pos + 1) }
                case .set(let i): if let c, sets[i].contains(c) { add(&next, Thread(pc: t.pc + 1, slots: t.slots), at: pos + 1) }
                default: break
                }
                if matched != nil { break }
            }
            if matched != nil || c == nil { break }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
            pos += 1
        }
        return matched
    }

    private func holds(_ a: Assertion, _ input: [Unicode.Scalar], _ pos: Int) -> Bool {
        switch a {
        case .textStart: return pos == 0
        case .textEnd: return pos == input.count
        case .lineStart: return pos == 0 || input[pos - 1] == "\n"
        case .lineEnd: return pos == input.count || input[pos] == "\n"
        case .wordBoundary, .notWordBoundary:
            let before = pos > 0 && Self.isWord(input[pos - 1]), after = pos < input.count && Self.isWord(input[pos])
            return (before != after) == (a == .wordBoundary)
        }
    }

    static func isWord(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
    }

    /// Simple case folding: the lower-case form when it is one scalar.
    static func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.isASCII { return c >= "A" && c <= "Z" ? Unicode.Scalar(c.value + 32)! : c }
        let lower = c.properties.lowercaseMapping.unicodeScalars
        return lower.count == 1 ? lower.first! : c
    }
}

/// A set of scalars: ranges, possibly negated and case-insensitive.
struct ScalarSet: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var negated = false
    var foldCase = false

    func contains(_ c: Unicode.Scalar) -> Bool {
        var hit = ranges.contains { $0.contains(c.value) }
        if !hit, foldCase {
            let lower = LinearRegex.fold(c).value
            let upper = c.properties.uppercaseMapping.unicodeScalars
            hit = ranges.contains { $0.contains(lower) } || (upper.count == 1 && ranges.contains { $0.contains(upper.first!.value) })
        }
        return hit != negated
    }

    static let digit = ScalarSet(ranges: [48...57])
    static let word = ScalarSet(ranges: [48...57, 65...90, 95...95, 97...122])
    static let space = ScalarSet(ranges: [9...10, 12...13, 32...32])
    static let posix: [String: [ClosedRange<UInt32>]] = [
        "alnum": [48...57, 65...90, 97...122], "alpha": [65...90, 97...122], "ascii": [0...127], "blank": [9...9, 32...32],
        "cntrl": [0...31, 127...127], "digit": [48...57], "graph": [33...126], "lower": [97...122], "print": [32...126],
        "punct": [33...47, 58...64, 91...96, 123...126], "space": [9...13, 32...32], "upper": [65...90],
        "word": [48...57, 65...90, 95...95, 97...122], "xdigit": [48...57, 65...70, 97...102],
    ]

    /// The complement of `ranges` over all of Unicode.
    static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = max(next, r.upperBound &+ 1)
        }
        if next <= 0x10FFFF { out.append(next...0x10FFFF) }
        return out
    }
}

private indirect enum Node {
    case empty
    case scalar(Unicode.Scalar, fold: Bool)
    case set(Int)
    case concat([Node])
    case alternate([Node])
    case repeated(Node, min: Int, max: Int?, greedy: Bool)
    case group(Node, index: Int?)
    case assert(LinearRegex.Assertion)
}

private struct Flags { var fold = false, dotAll: Bool, multiline = false, ungreedy = false }

private struct Parser {
    let s: [Unicode.Scalar]
    var i = 0
    var flags: Flags
    var sets: [ScalarSet] = []
    var groupCount = 0
    var groupNames: [String: Int] = [:]
    var depth = 0

    init(_ s: [Unicode.Scalar], dotAll: Bool) {
        self.s = s
        flags = Flags(dotAll: dotAll)
    }

    func error(_ m: String) -> LinearRegex.SyntaxError {
        LinearRegex.SyntaxError(message: "\(m) at position \(i) of `\(String(String.UnicodeScalarView(s)))`")
    }

    mutating func parseAll() throws(LinearRegex.SyntaxError) -> Node {
        let n = try parseAlternation()
        if i < s.count { throw error("unexpected )") }
        return n
    }

    mutating func parseAlternation() throws(LinearRegex.SyntaxError) -> Node {
        var branches = [try parseConcat()]
        while i < s.count, s[i] == "|" {
            i += 1
            branches.append(try parseConcat())
        }
        return branches.count == 1 ? branches[0] : .alternate(branches)
    }

    mutating func parseConcat() throws(LinearRegex.SyntaxError) -> Node {
        var items: [Node] = []
        while i < s.count, s[i] != "|", s[i] != ")" {
            let c = s[i]
            if c == "*" || c == "+" || c == "?" { throw error("missing argument to repetition operator \(c)") }
            if c == "(", i + 1 < s.count, s[i + 1] == "?", let scoped = try parseFlagGroup() {
                if case .empty = scoped { continue }
                items.append(scoped)
            } else {
                var atom = try parseAtom()
                atom = try parseRepeats(atom)
                items.append(atom)
            }
        }
        return items.count == 1 ? items[0] : items.isEmpty ? .empty : .concat(items)
    }

    /// `(?flags)` (changes the flags for the rest of the group: `.empty`) or `(?flags:re)`; nil when the
    /// group is a named or non-capturing group handled by ``parseAtom()``.
    mutating func parseFlagGroup() throws(LinearRegex.SyntaxError) -> Node? {
        var j = i + 2
        if j < s.count, s[j] == "P" || s[j] == "<" || s[j] == ":" { return nil }
        var f = flags
        var negate = false
        while j < s.count {
            let c = s[j]
            switch c {
            case "i": f.fold = !negate
            case "s": f.dotAll = !negate
            case "m": f.multiline = !negate
            case "U": f.ungreedy = !negate
            case "-": if negate { throw error("invalid flags") }; negate = true
            case ")":
                i = j + 1
                flags = f
                return .empty
            case ":":
                i = j + 1
                let saved = flags
                flags = f
                depth += 1
                guard depth <= 1000 else { throw error("expression nests too deeply") }
                let inner = try parseAlternation()
                depth -= 1
                guard i < s.count, s[i] == ")" else { throw error("missing )") }
                i += 1
                flags = saved
                return try parseRepeats(.group(inner, index: nil))
            default:
                if c == "=" || c == "!" { throw error("look-around (?\(c)…) is not supported (RE2 syntax)") }
                throw error("invalid or unsupported flag \(c)")
            }
            j += 1
        }
        throw error("missing )")
    }

    mutating func parseAtom() throws(LinearRegex.SyntaxError) -> Node {
        let c = s[i]
        i += 1
        switch c {
        case "(":
            var index: Int? = nil
            if i < s.count, s[i] == "?" {
                if i + 1 < s.count, s[i + 1] == ":" { i += 2 }
                else if i + 1 < s.count, s[i + 1] == "P" || s[i + 1] == "<" {
                    i += s[i + 1] == "P" ? 2 : 1
                    guard i < s.count, s[i] == "<" else { throw error("invalid named group") }
                    i += 1
                    var name = ""
                    while i < s.count, s[i] != ">" {
                        guard LinearRegex.isWord(s[i]) else { throw error("invalid group name") }
                        name.unicodeScalars.append(s[i]); i += 1
                    }
                    guard i < s.count, !name.isEmpty else { throw error("invalid named group") }
                    i += 1
                    groupCount += 1
                    guard groupNames[name] == nil else { throw error("duplicate group name \(name)") }
                    groupNames[name] = groupCount
                    index = groupCount
                } else { throw error("invalid group") }
            } else {
                groupCount += 1
                index = groupCount
            }
            depth += 1
            guard depth <= 1000 else { throw error("expression nests too deeply") }
            let saved = flags
            let inner = try parseAlternation()
            flags = saved
            depth -= 1
            guard i < s.count, s[i] == ")" else { throw error("missing )") }
            i += 1
            return .group(inner, index: index)
        case ".":
            return .set(addSet(flags.dotAll ? ScalarSet(negated: true) : ScalarSet(ranges: [10...10], negated: true)))
        case "^": return .assert(flags.multiline ? .lineStart : .textStart)
        case "$": return .assert(flags.multiline ? .lineEnd : .textEnd)
        case "[": return .set(addSet(try parseClass()))
        case "\\": return try parseEscape()
        default: return .scalar(flags.fold ? LinearRegex.fold(c) : c, fold: flags.fold)
        }
    }

    mutating func addSet(_ set: ScalarSet) -> Int {
        var set = set
        set.foldCase = flags.fold
        sets.append(set)
        return sets.count - 1
    }

    mutating func parseRepeats(_ atom: Node) throws(LinearRegex.SyntaxError) -> Node {
        var node = atom
        var repeated = false
        while i < s.count {
            var minCount = 0, maxCount: Int? = nil
            switch s[i] {
            case "*": i += 1
            case "+": minCount = 1; i += 1
            case "?": maxCount = 1; i += 1
            case "{":
                guard let (a, b, end) = braceRepeat(at: i) else { return node }
                minCount = a; maxCount = b; i = end
            default: return node
            }
            if repeated { throw error("invalid nested repetition operator") }
            repeated = true
            var greedy = true
            if i < s.count, s[i] == "?" { greedy = false; i += 1 }
            if flags.ungreedy { greedy.toggle() }
            if case .assert = atom { node = .empty; continue }
            node = .repeated(node, min: minCount, max: maxCount, greedy: greedy)
        }
        return node
    }

    /// `{n}`, `{n,}` or `{n,m}` at `at`: (min, max, index after); nil when it is a literal brace.
    func braceRepeat(at start: Int) -> (Int, Int?, Int)? {
        var j = start + 1
        func number() -> Int? {
            var v = 0, digits = 0
            while j < s.count, s[j] >= "0", s[j] <= "9" { v = min(v * 10 + Int(s[j].value - 48), 100_000); digits += 1; j += 1 }
            return digits > 0 ? v : nil
        }
        guard let a = number() else { return nil }
        var b: Int? = a
        if j < s.count, s[j] == "," {
            j += 1
            b = j < s.count && s[j] == "}" ? nil : number()
            if b == nil, j < s.count, s[j] != "}" { return nil }
        }
        guard j < s.count, s[j] == "}" else { return nil }
        return (a, b, j + 1)
    }

    mutating func parseEscape() throws(LinearRegex.SyntaxError) -> Node {
        guard i < s.count else { throw error("trailing backslash") }
        let c = s[i]
        i += 1
        switch c {
        case "d": return .set(addSet(.digit))
        case "D": return .set(addSet(ScalarSet(ranges: ScalarSet.digit.ranges, negated: true)))
        case "w": return .set(addSet(.word))
        case "W": return .set(addSet(ScalarSet(ranges: ScalarSet.word.ranges, negated: true)))
        case "s": return .set(addSet(.space))
        case "S": return .set(addSet(ScalarSet(ranges: ScalarSet.space.ranges, negated: true)))
        case "b": return .assert(.wordBoundary)
        case "B": return .assert(.notWordBoundary)
        case "A": return .assert(.textStart)
        case "z": return .assert(.textEnd)
        default:
            i -= 1
            let v = try escapedScalar()
            return .scalar(flags.fold ? LinearRegex.fold(v) : v, fold: flags.fold)
        }
    }

    /// The scalar an escape (after the backslash) stands for: `\n`, `\x41`, `\x{263a}`, `\.`.
    mutating func escapedScalar() throws(LinearRegex.SyntaxError) -> Unicode.Scalar {
        let c = s[i]
        i += 1
        switch c {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "f": return "\u{0C}"
        case "v": return "\u{0B}"
        case "a": return "\u{07}"
        case "x":
            var hex = ""
            if i < s.count, s[i] == "{" {
                i += 1
                while i < s.count, s[i] != "}" { hex.unicodeScalars.append(s[i]); i += 1 }
                guard i < s.count else { throw error("missing } in \\x{…}") }
                i += 1
            } else {
                guard i + 1 < s.count else { throw error("invalid escape \\x") }
                hex.unicodeScalars.append(s[i]); hex.unicodeScalars.append(s[i + 1])
                i += 2
            }
            guard hex.count <= 8, let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else { throw error("invalid escape \\x\(hex)") }
            return scalar
        case "0"..."9": throw error("backreferences and octal escapes are not supported (RE2 syntax)")
        default:
            guard c.isASCII, !LinearRegex.isWord(c) else { throw error("invalid escape \\\(c)") }
            return c
        }
    }

    /// A bracket class after `[`.
    mutating func parseClass() throws(LinearRegex.SyntaxError) -> ScalarSet {
        var set = ScalarSet()
        if i < s.count, s[i] == "^" { set.negated = true; i += 1 }
        var first = true
        while i < s.count, s[i] != "]" || first {
            first = false
            // [:alpha:] and [:^alpha:]
            if s[i] == "[", i + 1 < s.count, s[i + 1] == ":" {
                var j = i + 2, name = ""
                while j < s.count, s[j] != ":" { name.unicodeScalars.append(s[j]); j += 1 }
                let negated = name.hasPrefix("^")
                if negated { name.removeFirst() }
                guard j + 1 < s.count, s[j + 1] == "]", let ranges = ScalarSet.posix[name] else { throw error("invalid character class [:\(name):]") }
                set.ranges += negated ? ScalarSet.complement(ranges) : ranges
                i = j + 2
                continue
            }
            if s[i] == "\\", i + 1 < s.count, let named = Self.classEscapes[s[i + 1]] {
                set.ranges += named
                i += 2
                continue
            }
            let lo = try classScalar()
            if i + 1 < s.count, s[i] == "-", s[i + 1] != "]" {
                i += 1
                let hi = try classScalar()
                guard lo.value <= hi.value else { throw error("invalid character class range") }
                set.ranges.append(lo.value...hi.value)
            } else {
                set.ranges.append(lo.value...lo.value)
            }
        }
        guard i < s.count else { throw error("missing ]") }
        i += 1
        return set
    }

    static let classEscapes: [Unicode.Scalar: [ClosedRange<UInt32>]] = [
        "d": ScalarSet.digit.ranges, "D": ScalarSet.complement(ScalarSet.digit.ranges),
        "w": ScalarSet.word.ranges, "W": ScalarSet.complement(ScalarSet.word.ranges),
        "s": ScalarSet.space.ranges, "S": ScalarSet.complement(ScalarSet.space.ranges),
    ]

    mutating func classScalar() throws(LinearRegex.SyntaxError) -> Unicode.Scalar {
        guard i < s.count else { throw error("missing ]") }
        if s[i] == "\\" {
            i += 1
            guard i < s.count else { throw error("trailing backslash") }
            return try escapedScalar()
        }
        i += 1
        return s[i - 1]
    }
}

private struct Compiler {
    var program: [LinearRegex.Inst] = []
    var sets: [ScalarSet]

    init(sets: [ScalarSet]) { self.sets = sets }

    mutating func emit(_ inst: LinearRegex.Inst) throws(LinearRegex.SyntaxError) {
        guard program.count < LinearRegex.maxProgramSize else {
            throw LinearRegex.SyntaxError(message: "regular expression too large (more than \(LinearRegex.maxProgramSize) instructions once repeats are expanded)")
        }
        program.append(inst)
    }

    mutating func compile(_ node: Node) throws(LinearRegex.SyntaxError) {
        switch node {
        case .empty: break
        case .scalar(let c, let fold): try emit(fold ? .foldedScalar(c) : .scalar(c))
        case .set(let i): try emit(.set(i))
        case .assert(let a): try emit(.assert(a))
        case .concat(let items): for n in items { try compile(n) }
        case .group(let inner, let index):
            if let index { try emit(.save(2 * index)) }
            try compile(inner)
            if let index { try emit(.save(2 * index + 1)) }
        case .alternate(let branches):
            // split L1, next; L1: branch; jump end; next: split ...
            var jumps: [Int] = []
            for (k, b) in branches.enumerated() {
                if k < branches.count - 1 {
                    let split = program.count
                    try emit(.split(split + 1, -1))
                    try compile(b)
                    jumps.append(program.count)
                    try emit(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try compile(b)
                }
            }
            for j in jumps { program[j] = .jump(program.count) }
        case .repeated(let inner, let minCount, let maxCount, let greedy):
            guard minCount <= 1000, (maxCount ?? 0) <= 1000, minCount <= (maxCount ?? minCount) else {
                throw LinearRegex.SyntaxError(message: "invalid repeat count {\(minCount),\(maxCount.map(String.init) ?? "")}: at most 1000")
            }
            for _ in 0..<minCount { try compile(inner) }
            if let maxCount {
                // Each optional copy: split(body, end) — nested, so stopping early skips the rest.
                var splits: [Int] = []
                for _ in minCount..<maxCount {
                    splits.append(program.count)
                    try emit(.split(-1, -1))
                    try compile(inner)
                }
                for s in splits { program[s] = greedy ? .split(s + 1, program.count) : .split(program.count, s + 1) }
            } else {
                // L: split(body, end); body; jump L
                let loop = program.count
                try emit(.split(-1, -1))
                try compile(inner)
                try emit(.jump(loop))
                program[loop] = greedy ? .split(loop + 1, program.count) : .split(program.count, loop + 1)
            }
        }
    }
}
