/// The identity of a series: a metric name plus its labels.
public struct SeriesKey: Hashable, Sendable, CustomStringConvertible {
    public var metric: String
    public var labels: Labels

    public init(_ metric: String, _ labels: Labels = .empty) {
        self.metric = metric
        self.labels = labels
    }

    /// `metric{a="1"}` — the Prometheus text form, also used as the stored canonical key.
    public var description: String { metric + labels.text }

    /// Parses `metric`, `metric{a="1",b="x"}` or `{__name__="metric",...}`.
    public static func parse(_ text: String) throws -> SeriesKey {
        var p = SelectorScanner(text)
        let (name, matchers) = try p.parseSelector()
        var labels: [Label] = []
        var metric = name
        for m in matchers {
            guard m.op == "=" else {
                throw TwinError.badInput("series key \(text): only '=' matchers name a single series (got \(m.op))")
            }
            if m.name == "__name__" { metric = m.value } else { labels.append(Label(m.name, m.value)) }
        }
        guard let metric, !metric.isEmpty else { throw TwinError.badInput("series key \(text): no metric name") }
        return SeriesKey(metric, Labels(labels))
    }
}

/// One label matcher of a selector: `name op "value"` with op one of `=`, `!=`, `=~`, `!~`.
public struct LabelMatcher: Sendable, Hashable {
    public var name: String
    public var op: String
    public var value: String
}

/// A small scanner for Prometheus selectors (`name{label="v",...}`), shared by the CLI and tests.
public struct SelectorScanner {
    private let chars: [Character]
    private var i = 0
    public init(_ text: String) { chars = Array(text) }

    private mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    private func isIdent(_ c: Character, first: Bool) -> Bool {
        c == "_" || c == ":" || (c.isASCII && c.isLetter) || (!first && c.isASCII && c.isNumber)
    }

    private mutating func ident() -> String? {
        let start = i
        while i < chars.count, isIdent(chars[i], first: i == start) { i += 1 }
        return i > start ? String(chars[start..<i]) : nil
    }

    private func fail(_ what: String) -> TwinError {
        .badInput("selector: \(what) at position \(i + 1) of \"\(String(chars))\"")
    }

    public mutating func parseSelector() throws -> (String?, [LabelMatcher]) {
        skipSpace()
        let name = ident()
        skipSpace()
        var matchers: [LabelMatcher] = []
        if i < chars.count, chars[i] == "{" {
            i += 1
            while true {
                skipSpace()
                if i < chars.count, chars[i] == "}" { i += 1; break }
                guard let label = ident() else { throw fail("expected a label name") }
                skipSpace()
                var op = ""
                while i < chars.count, "=!~".contains(chars[i]), op.count < 2 { op.append(chars[i]); i += 1 }
                guard ["=", "!=", "=~", "!~"].contains(op) else { throw fail("expected one of = != =~ !~") }
                skipSpace()
                guard i < chars.count, chars[i] == "\"" || chars[i] == "'" else { throw fail("expected a quoted value") }
                let quote = chars[i]
                i += 1
                var value = ""
                var closed = false
                while i < chars.count {
                    let c = chars[i]
                    i += 1
                    if c == "\\", i < chars.count {
                        let n = chars[i]
                        i += 1
                        value.append(n == "n" ? "\n" : n)
                    } else if c == quote {
                        closed = true
                        break
                    } else {
                        value.append(c)
                    }
                }
                guard closed else { throw fail("unterminated string") }
                matchers.append(LabelMatcher(name: label, op: op, value: value))
                skipSpace()
                if i < chars.count, chars[i] == "," { i += 1; continue }
                if i < chars.count, chars[i] == "}" { i += 1; break }
                throw fail("expected , or }")
            }
        }
        skipSpace()
        guard i == chars.count else { throw fail("unexpected text") }
        if name == nil && matchers.isEmpty { throw fail("empty selector") }
        return (name, matchers)
    }
}
