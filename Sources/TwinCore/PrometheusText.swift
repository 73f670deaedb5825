/// The Prometheus text exposition format (version 0.0.4), as node_exporter writes it: families sorted
/// by name, `# TYPE` lines, series sorted by labels, values formatted as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
public enum PrometheusText {
    /// Renders samples; `types` gives each family's type (untyped when absent), `help` its `# HELP` text.
    public static func render(_ samples: [MetricSample], types: [String: MetricType], help: (String) -> String? = { _ in nil }) -> String {
        var byName: [String: [(String, Double)]] = [:]
        for s in samples { byName[s.key.metric, default: []].append((s.key.labels.text, s.value)) }
        var out = ""
        out.reserveCapacity(samples.count * 64)
        for name in byName.keys.sorted() {
            if let h = help(name) { out += "# HELP \(name) \(escapeHelp(h))\n" }
            out += "# TYPE \(name) \((types[name] ?? .untyped).rawValue)\n"
            for (labels, v) in byName[name]!.sorted(by: { $0.0 < $1.0 }) {
                out += name
                out += labels
                out += " "
                out += formatValue(v)
                out += "\n"
            }
        }
        return out
    }

    /// A HELP text escaped for the format: backslash and newline.
    static func escapeHelp(_ s: String) -> String {
        s.contains(where: { $0 == "\\" || $0 == "\n" }) ? s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n") : s
    }

    /// Formats a float as Go's `%g` with shortest precision: `1.418183276e+09`, `10870.69`, `0`, `NaN`, `+Inf`.
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        if v == 0 { return v.sign == .minus ? "-0" : "0" }
        let (digits, dp) = shortestDigits(v)
        let x = dp - 1
        let sign = v < 0 ? "-" : ""
        // Go uses %e when the exponent is below -4 or at least 6 (the shortest-precision rule).
        if x < -4 || x >= 6 {
            var m = String(digits.first!)
            if digits.count > 1 { m += "." + digits.dropFirst() }
            let ex = abs(x) < 10 ? "0\(abs(x))" : "\(abs(x))"
            return sign + m + "e" + (x < 0 ? "-" : "+") + ex
        }
        return sign + fixed(digits, dp)
    }

    /// The shortest decimal digits that read back as |v| (finite, non-zero), without leading or
    /// trailing zeros, and where the decimal point falls among them (`0.015` → ("15", -1)).
    public static func shortestDigits(_ v: Double) -> (digits: String, point: Int) {
        // Swift's description is the shortest round-tripping decimal; take its digits and exponent.
        var s = "\(abs(v))"
        var exp = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(s[s.index(after: e)...])!
            s = String(s[..<e])
        }
        var digits = s.filter { $0 != "." }
        let pointPos = s.firstIndex(of: ".").map { s.distance(from: s.startIndex, to: $0) } ?? s.count
        var dp = pointPos + exp
        while digits.hasPrefix("0") && digits.count > 1 { digits.removeFirst(); dp -= 1 }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (digits, dp)
    }

    /// Digits with the decimal point at `dp`, without an exponent.
    public static func fixed(_ digits: String, _ dp: Int) -> String {
        if dp <= 0 { return "0." + String(repeating: "0", count: -dp) + digits }
        if dp >= digits.count { return digits + String(repeating: "0", count: dp - digits.count) }
        let i = digits.index(digits.startIndex, offsetBy: dp)
        return digits[..<i] + "." + digits[i...]
    }
}
