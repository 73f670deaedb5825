/// Number formats of the Prometheus HTTP API.
public enum PromNumber {
    /// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` prints it: the shortest digits that read
    /// back exactly, never an exponent; `+Inf`, `-Inf`, `NaN`.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == 0 { return v.sign == .minus ? "-0" : "0" }
        // Whole numbers below 2^53 print as integers.
        if v.magnitude < 9.007_199_254_740_992e15, v.rounded(.towardZero) == v { return String(Int64(v)) }
        var s = v.description // shortest round-trip digits, maybe with an exponent
        if !s.utf8.contains(UInt8(ascii: "e")) { return s } // already Go's 'f' form
        var negative = false
        if s.hasPrefix("-") { negative = true; s.removeFirst() }
        var exponent = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(s[s.index(after: e)...]) ?? 0
            s = String(s[..<e])
        }
        var intPart = s, fracPart = ""
        if let dot = s.firstIndex(of: ".") {
            intPart = String(s[..<dot])
            fracPart = String(s[s.index(after: dot)...])
        }
        var digits = intPart + fracPart
        var pointAt = intPart.count + exponent // position of the decimal point within digits
        // Trim leading zeros (keeping the point's place) and trailing zeros.
        while digits.count > 1, digits.first == "0" { digits.removeFirst(); pointAt -= 1 }
        while digits.count > 1, digits.last == "0", digits.count > pointAt { digits.removeLast() }
        var out: String
        if pointAt <= 0 {
            out = "0." + String(repeating: "0", count: -pointAt) + digits
        } else if pointAt >= digits.count {
            out = digits + String(repeating: "0", count: pointAt - digits.count)
        } else {
            let i = digits.index(digits.startIndex, offsetBy: pointAt)
            out = digits[..<i] + "." + digits[i...]
        }
        return negative ? "-" + out : out
    }
}
