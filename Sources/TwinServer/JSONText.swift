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
        // The digit count first, then the digits written in place from the last: one growth check per number.
        var n = 1
        var limit: UInt64 = 10
        while n < 20, v >= limit { n += 1; limit = limit &* 10 }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: n))
        bytes.withUnsafeMutableBufferPointer { b in
            var x = v, i = start + n - 1
            repeat { b[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: x % 10); x /= 10; i -= 1 } while x > 0
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
        // The digits of frac (width of them), most significant first: no array per call.
        if width == 3 { bytes.append(UInt8(ascii: "0") + UInt8(frac / 100 % 10)) }
        if width >= 2 { bytes.append(UInt8(ascii: "0") + UInt8(frac / 10 % 10)) }
        bytes.append(UInt8(ascii: "0") + UInt8(frac % 10))
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
        } else if v.isFinite {
            // Swift's shortest round-trip digits written straight into the buffer (no String); they are
            // Go's 'f' form unless Swift chose an exponent, which then gives way to the full formatter.
            let start = bytes.count
            v.write(to: &self)
            if let e = bytes[start...].firstIndex(of: UInt8(ascii: "e")) {
                rewriteWithoutExponent(from: start, e: e)
            } else if bytes.count - start > 2, bytes[bytes.count - 2] == UInt8(ascii: "."), bytes[bytes.count - 1] == UInt8(ascii: "0") {
                bytes.removeLast(2) // Swift's "1234567890123456.0" is Go's "1234567890123456"
            }
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

extension JSONText {
    /// Rewrites the number Swift wrote at `start` with an exponent at `e` (`-1.5e-05`) in Go's 'f' form
    /// (`-0.000015`), in place: the same digits, the point moved, zeros added.
    mutating func rewriteWithoutExponent(from start: Int, e: Int) {
        var exponent = 0, negativeExponent = false
        var i = e + 1
        if bytes[i] == UInt8(ascii: "-") { negativeExponent = true; i += 1 } else if bytes[i] == UInt8(ascii: "+") { i += 1 }
        while i < bytes.count { exponent = exponent * 10 + Int(bytes[i] - UInt8(ascii: "0")); i += 1 }
        if negativeExponent { exponent = -exponent }
        let negative = bytes[start] == UInt8(ascii: "-")
        var digits: [UInt8] = []
        digits.reserveCapacity(24)
        var point = -1
        for k in (negative ? start + 1 : start)..<e {
            if bytes[k] == UInt8(ascii: ".") { point = digits.count } else { digits.append(bytes[k]) }
        }
        if point < 0 { point = digits.count }
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let dp = point + exponent
        bytes.removeSubrange(start...)
        if negative { bytes.append(UInt8(ascii: "-")) }
        if dp <= 0 {
            bytes.append(UInt8(ascii: "0"))
            bytes.append(UInt8(ascii: "."))
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -dp))
            bytes.append(contentsOf: digits)
        } else if dp >= digits.count {
            bytes.append(contentsOf: digits)
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: dp - digits.count))
        } else {
            bytes.append(contentsOf: digits[..<dp])
            bytes.append(UInt8(ascii: "."))
            bytes.append(contentsOf: digits[dp...])
        }
    }
}

/// Numbers write themselves into the buffer as ASCII (`Double.write(to:)`), without a String between.
extension JSONText: TextOutputStream {
    mutating func write(_ string: String) { bytes.append(contentsOf: string.utf8) }
    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }
}
