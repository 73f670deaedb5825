import TwinCore

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
        let s = v.description
        if !s.utf8.contains(UInt8(ascii: "e")) { return s } // already Go's 'f' form
        let (digits, point) = PrometheusText.shortestDigits(v)
        let out = PrometheusText.fixed(digits, point)
        return v < 0 ? "-" + out : out
    }
}
