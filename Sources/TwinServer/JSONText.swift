import TwinCore
import TwinQuery

/// Builds JSON text directly: the query API writes large arrays of numbers-as-strings, which Codable
/// would allocate per element for.
struct JSONText {
    var out = ""

    init(capacity: Int = 256) { out.reserveCapacity(capacity) }

    mutating func raw(_ s: String) { out += s }

    /// A JSON string literal.
    mutating func string(_ s: String) {
        out += "\""
        var needsEscape = false
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5C { needsEscape = true; break }
        if !needsEscape { out += s } else {
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if ch.value < 0x20 {
                        let hex = String(ch.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else { out.unicodeScalars.append(ch) }
                }
            }
        }
        out += "\""
    }

    /// `{"name":"value",...}` of a label set.
    mutating func labels(_ l: Labels) {
        out += "{"
        for (i, p) in l.pairs.enumerated() {
            if i > 0 { out += "," }
            string(p.name)
            out += ":"
            string(p.value)
        }
        out += "}"
    }

    /// `[seconds,"value"]`, the API's sample pair.
    mutating func point(_ t: Int64, _ v: Double) {
        out += "["
        PromNumber.appendTimestamp(t, to: &out)
        out += ",\""
        out += PromNumber.format(v)
        out += "\"]"
    }

    mutating func array<S: Sequence>(_ items: S, _ body: (inout JSONText, S.Element) -> Void) {
        out += "["
        var first = true
        for x in items {
            if !first { out += "," }
            first = false
            body(&self, x)
        }
        out += "]"
    }

    /// A JSON value for an entity attribute.
    mutating func attribute(_ a: AttributeValue) {
        switch a {
        case .string(let s): string(s)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }
}
