import TwinCore
import TwinQuery

/// Builds JSON as UTF-8 bytes directly: the query API writes large arrays of numbers-as-strings, which
/// Codable (or String appends) would spend most of a query's time on.
struct JSONText {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// The text built so far.
    var out: String { String(decoding: bytes, as: UTF8.self) }

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func raw(_ s: StaticString) { bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }

    /// A JSON string literal.
    mutating func string(_ s: String) {
        bytes.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: bytes.append(0x5C); bytes.append(0x22)
            case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
            case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(0x22)
    }

    /// A non-negative integer in decimal, without an intermediate String.
    mutating func decimal(_ v: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; n += 1 } while x > 0
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    /// A millisecond time as the API's float seconds (`1435781451.781`).
    mutating func timestamp(_ ms: Int64) {
        if ms < 0 { bytes.append(UInt8(ascii: "-")) }
        let a = ms.magnitude
        decimal(a / 1000)
        var frac = a % 1000
        guard frac != 0 else { return }
        bytes.append(UInt8(ascii: "."))
        var width = 3
        while frac % 10 == 0 { frac /= 10; width -= 1 }
        let digits = [UInt8(ascii: "0") + UInt8(frac / 100 % 10), UInt8(ascii: "0") + UInt8(frac / 10 % 10), UInt8(ascii: "0") + UInt8(frac % 10)]
        bytes.append(contentsOf: digits[(3 - width)...])
    }

    /// `{"name":"value",...}` of a label set.
    mutating func labels(_ l: Labels) {
        bytes.append(UInt8(ascii: "{"))
        for (i, p) in l.pairs.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            string(p.name)
            bytes.append(UInt8(ascii: ":"))
            string(p.value)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// `[seconds,"value"]`, the API's sample pair.
    mutating func point(_ t: Int64, _ v: Double) {
        bytes.append(UInt8(ascii: "["))
        timestamp(t)
        bytes.append(UInt8(ascii: ","))
        bytes.append(0x22)
        if v.magnitude < 1e15, v.rounded(.towardZero) == v, !(v == 0 && v.sign == .minus) {
            if v < 0 { bytes.append(UInt8(ascii: "-")) }
            decimal(UInt64(v.magnitude))
        } else {
            raw(PromNumber.format(v))
        }
        bytes.append(0x22)
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func array<S: Sequence>(_ items: S, _ body: (inout JSONText, S.Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        for x in items {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            body(&self, x)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A JSON value for an entity attribute.
    mutating func attribute(_ a: AttributeValue) {
        switch a {
        case .string(let s): string(s)
        case .int(let i): raw(String(i))
        case .double(let d): raw(d.isFinite ? String(d) : "null")
        case .bool(let b): raw(b ? "true" : "false")
        case .null: raw("null")
        }
    }
}
