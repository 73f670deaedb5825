/// One PromQL token with its offset in the query text.
struct Token: Equatable {
    enum Kind: Equatable {
        case identifier(String)
        case number(Double)
        case duration(Int64)
        case string(String)
        case op(String)
        case eof
    }
    var kind: Kind
    var position: Int
}

/// Splits PromQL text into tokens. Works on the UTF-8 bytes; strings may hold any UTF-8.
struct Lexer {
    private let bytes: [UInt8]
    private var i = 0
    /// Inside `[...]` a colon separates a subquery's range and step instead of starting a name.
    private var brackets = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    static func tokenize(_ text: String) throws -> [Token] {
        var lexer = Lexer(text)
        var out: [Token] = []
        while true {
            let t = try lexer.next()
            out.append(t)
            if t.kind == .eof { return out }
        }
    }

    private func fail(_ message: String, at pos: Int? = nil) -> PromQLError {
        PromQLError.parse(position: pos ?? i, message: message)
    }

    static func isIdentStart(_ c: UInt8) -> Bool { c == 95 || c == 58 || (c | 0x20 >= 97 && c | 0x20 <= 122) }
    static func isIdentChar(_ c: UInt8) -> Bool { isIdentStart(c) || isDigit(c) }
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    mutating func next() throws -> Token {
        while i < bytes.count {
            let c = bytes[i]
            if c == 32 || c == 9 || c == 10 || c == 13 { i += 1; continue }
            if c == UInt8(ascii: "#") { // comment to end of line
                while i < bytes.count, bytes[i] != 10 { i += 1 }
                continue
            }
            break
        }
        let start = i
        guard i < bytes.count else { return Token(kind: .eof, position: i) }
        let c = bytes[i]
        if Self.isDigit(c) || (c == UInt8(ascii: ".") && i + 1 < bytes.count && Self.isDigit(bytes[i + 1])) {
            if let d = durationAt(i) { i = d.end; return Token(kind: .duration(d.ms), position: start) }
            return Token(kind: .number(try number()), position: start)
        }
        if c == UInt8(ascii: ":"), brackets > 0 {
            i += 1
            return Token(kind: .op(":"), position: start)
        }
        if Self.isIdentStart(c) {
            while i < bytes.count, Self.isIdentChar(bytes[i]) { i += 1 }
            let word = String(decoding: bytes[start..<i], as: UTF8.self)
            // Inf and NaN are numbers wherever a number may stand.
            switch word.lowercased() {
            case "inf": return Token(kind: .number(.infinity), position: start)
            case "nan": return Token(kind: .number(.nan), position: start)
            default: return Token(kind: .identifier(word), position: start)
            }
        }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "`") {
            return Token(kind: .string(try string(quote: c)), position: start)
        }
        let two = i + 1 < bytes.count ? String(decoding: bytes[i...i + 1], as: UTF8.self) : ""
        if ["==", "!=", ">=", "<=", "=~", "!~"].contains(two) {
            i += 2
            return Token(kind: .op(two), position: start)
        }
        if "+-*/%^=<>(){}[],:@".utf8.contains(c) {
            if c == UInt8(ascii: "[") { brackets += 1 } else if c == UInt8(ascii: "]") { brackets = max(0, brackets - 1) }
            i += 1
            return Token(kind: .op(String(UnicodeScalar(c))), position: start)
        }
        throw fail("unexpected character: '\(String(decoding: bytes[i..<min(bytes.count, i + 1)], as: UTF8.self))'")
    }

    /// A duration such as `5m`, `1h30m`, `250ms` starting at `p`, if one is there.
    private func durationAt(_ p: Int) -> (ms: Int64, end: Int)? {
        var j = p
        var total: Int64 = 0
        var any = false
        while j < bytes.count, Self.isDigit(bytes[j]) {
            var n: Int64 = 0
            while j < bytes.count, Self.isDigit(bytes[j]) {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int64(bytes[j] - 48))
                if o1 || o2 { return nil }
                n = s
                j += 1
            }
            let unit: Int64
            if j + 1 < bytes.count, bytes[j] == UInt8(ascii: "m"), bytes[j + 1] == UInt8(ascii: "s") { unit = 1; j += 2 }
            else if j < bytes.count {
                switch bytes[j] {
                case UInt8(ascii: "s"): unit = 1000
                case UInt8(ascii: "m"): unit = 60_000
                case UInt8(ascii: "h"): unit = 3_600_000
                case UInt8(ascii: "d"): unit = 86_400_000
                case UInt8(ascii: "w"): unit = 7 * 86_400_000
                case UInt8(ascii: "y"): unit = 365 * 86_400_000
                default: return nil
                }
                j += 1
            } else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: unit)
            if o { return nil }
            total &+= m
            any = true
        }
        // `5m:30s` (a subquery) ends a duration at the colon; letters, digits and `_` would not.
        guard any, j >= bytes.count || bytes[j] == UInt8(ascii: ":") || !Self.isIdentChar(bytes[j]) else { return nil }
        return (total, j)
    }

    private mutating func number() throws -> Double {
        let start = i
        if bytes[i] == 48, i + 1 < bytes.count, bytes[i + 1] | 0x20 == UInt8(ascii: "x") {
            i += 2
            while i < bytes.count, bytes[i].isHexDigit { i += 1 }
            let text = String(decoding: bytes[start + 2..<i], as: UTF8.self)
            guard let v = UInt64(text, radix: 16) else { throw fail("bad number or duration syntax: \"\(String(decoding: bytes[start..<i], as: UTF8.self))\"", at: start) }
            return Double(v)
        }
        while i < bytes.count, Self.isDigit(bytes[i]) || bytes[i] == UInt8(ascii: ".") { i += 1 }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            var j = i + 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            if j < bytes.count, Self.isDigit(bytes[j]) {
                i = j
                while i < bytes.count, Self.isDigit(bytes[i]) { i += 1 }
            }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard i >= bytes.count || !Self.isIdentChar(bytes[i]), let v = Double(text) else {
            while i < bytes.count, Self.isIdentChar(bytes[i]) { i += 1 }
            throw fail("bad number or duration syntax: \"\(String(decoding: bytes[start..<i], as: UTF8.self))\"", at: start)
        }
        return v
    }

    private mutating func string(quote: UInt8) throws -> String {
        let start = i
        i += 1
        var out: [UInt8] = []
        while i < bytes.count {
            let c = bytes[i]
            if c == quote { i += 1; return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") && quote != UInt8(ascii: "`") {
                i += 1
                guard i < bytes.count else { break }
                let e = bytes[i]
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "a"): out.append(7)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "v"): out.append(11)
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "`"): out.append(e)
                case UInt8(ascii: "u"), UInt8(ascii: "U"), UInt8(ascii: "x"):
                    let n = e == UInt8(ascii: "u") ? 4 : e == UInt8(ascii: "U") ? 8 : 2
                    guard i + n < bytes.count, let v = UInt32(String(decoding: bytes[i + 1...i + n], as: UTF8.self), radix: 16) else {
                        throw fail("invalid escape sequence in string", at: i - 1)
                    }
                    if e == UInt8(ascii: "x") { out.append(UInt8(v)) } else {
                        guard let scalar = UnicodeScalar(v) else { throw fail("invalid Unicode code point in string", at: i - 1) }
                        out += Array(String(Character(scalar)).utf8)
                    }
                    i += n
                default:
                    throw fail("unknown escape sequence '\\\(String(UnicodeScalar(e)))' in string", at: i - 1)
                }
                i += 1
                continue
            }
            if c == 10 && quote != UInt8(ascii: "`") { break }
            out.append(c)
            i += 1
        }
        throw fail("unterminated quoted string", at: start)
    }
}

private extension UInt8 {
    var isHexDigit: Bool { (self >= 48 && self <= 57) || (self | 0x20 >= 97 && self | 0x20 <= 102) }
}
