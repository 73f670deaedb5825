import TwinCore

/// A parser for the JSON attributes are stored as: one object whose values are scalars. About ten
/// times faster than `JSONDecoder` here (no throwing type probes per value), which is most of the cost
/// of reading a state snapshot. Gives nil for anything else (the caller falls back to `JSONDecoder`).
enum FlatJSON {
    static func parse(_ b: UnsafeRawBufferPointer) -> [String: AttributeValue]? {
        var p = Parser(b: b)
        return p.object()
    }

    private struct Parser {
        let b: UnsafeRawBufferPointer
        var i = 0

        mutating func skip() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func object() -> [String: AttributeValue]? {
            skip()
            guard i < b.count, b[i] == UInt8(ascii: "{") else { return nil }
            i += 1
            var out: [String: AttributeValue] = [:]
            skip()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return finish(out) }
            while true {
                skip()
                guard let key = string() else { return nil }
                skip()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                skip()
                guard let v = value() else { return nil }
                out[key] = v
                skip()
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return finish(out) }
                return nil
            }
        }

        mutating func finish(_ out: [String: AttributeValue]) -> [String: AttributeValue]? {
            skip()
            return i == b.count ? out : nil
        }

        mutating func value() -> AttributeValue? {
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        mutating func literal(_ word: StaticString, _ v: AttributeValue) -> AttributeValue? {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return nil }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return nil }
            i += n
            return v
        }

        mutating func number() -> AttributeValue? {
            let start = i
            var integral = true
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            while i < b.count {
                let c = b[i]
                if c >= 0x30 && c <= 0x39 { i += 1; continue }
                if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                    integral = false
                    i += 1
                    continue
                }
                break
            }
            guard i > start else { return nil }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            if integral, let v = Int64(text) { return .int(v) }
            guard let d = Double(text) else { return nil }
            // Like JSONDecoder's Int64 probe: a whole number that fits is an integer.
            if let v = Int64(exactly: d), !(d == 0 && d.sign == .minus) { return .int(v) }
            return .double(d)
        }

        mutating func string() -> String? {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") { i += 1 }
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "\"") {
                defer { i += 1 }
                return String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            }
            var bytes = Array(UnsafeRawBufferPointer(rebasing: b[start..<i]))
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; return String(decoding: bytes, as: UTF8.self) }
                if c != UInt8(ascii: "\\") { bytes.append(c); i += 1; continue }
                i += 1
                guard i < b.count else { return nil }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
                case UInt8(ascii: "b"): bytes.append(8)
                case UInt8(ascii: "f"): bytes.append(12)
                case UInt8(ascii: "n"): bytes.append(10)
                case UInt8(ascii: "r"): bytes.append(13)
                case UInt8(ascii: "t"): bytes.append(9)
                case UInt8(ascii: "u"):
                    guard var u = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(u) {
                        guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(u) else { return nil }
                    bytes += Array(String(Character(scalar)).utf8)
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= b.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: return nil
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }
    }
}
