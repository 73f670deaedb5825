import Foundation

/// Numbers printed as Prometheus' Go templates print them: `%v` of a float64 (the shortest text that reads
/// back, exponent form from 1e6 and below 1e-4), `%.4g`, `printf`, and the `humanize*` functions of
/// Prometheus 2.42's template package.
enum GoFormat {
    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest decimal that reads back as `v`, in exponent
    /// form when the exponent is below -4 or at least 6 (`1.234567e+06`).
    static func shortest(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        if v == 0 { return v.sign == .minus ? "-0" : "0" }
        let (digits, exp) = decimalDigits(v) // value = 0.d1d2... × 10^exp
        let sign = v < 0 ? "-" : ""
        let e = exp - 1
        if e < -4 || e >= 6 {
            var m = String(digits.first!)
            if digits.count > 1 { m += "." + digits.dropFirst() }
            return sign + m + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
        }
        if exp <= 0 { return sign + "0." + String(repeating: "0", count: -exp) + digits }
        if exp >= digits.count { return sign + digits + String(repeating: "0", count: exp - digits.count) }
        let cut = digits.index(digits.startIndex, offsetBy: exp)
        return sign + digits[..<cut] + "." + digits[cut...]
    }

    /// The shortest round-trip digits of |v| (no leading or trailing zeros) and the decimal exponent such
    /// that |v| = 0.DIGITS × 10^exp, from Swift's own shortest printing.
    static func decimalDigits(_ v: Double) -> (String, Int) {
        var text = "\(abs(v))" // e.g. "1234.5", "1e-05", "1.5e+20"
        var exp10 = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp10 = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0]), frac = parts.count > 1 ? String(parts[1]) : ""
        var digits = intPart + frac
        var point = intPart.count + exp10
        while digits.hasPrefix("0") { digits.removeFirst(); point -= 1 }
        while digits.hasSuffix("0") { digits.removeLast() }
        return (digits.isEmpty ? "0" : digits, point)
    }

    /// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `9.5e-01` (how Prometheus' API gives an alert's value).
    static func exponent(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        if v == 0 { return (v.sign == .minus ? "-" : "") + "0e+00" }
        let (digits, exp) = decimalDigits(v)
        let e = exp - 1
        var m = String(digits.first!)
        if digits.count > 1 { m += "." + digits.dropFirst() }
        return (v < 0 ? "-" : "") + m + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }

    /// Go's `%.Pg`.
    static func g(_ v: Double, _ precision: Int) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        return String(format: "%.\(precision)g", v)
    }

    static func humanize(_ value: Double) -> String {
        var v = value
        if v == 0 || !v.isFinite { return g(v, 4) }
        var prefix = ""
        if abs(v) >= 1 {
            for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
                if abs(v) < 1000 { break }
                prefix = p
                v /= 1000
            }
        } else {
            for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
                if abs(v) >= 1 { break }
                prefix = p
                v *= 1000
            }
        }
        return g(v, 4) + prefix
    }

    static func humanize1024(_ value: Double) -> String {
        var v = value
        if abs(v) <= 1 || !v.isFinite { return g(v, 4) }
        var prefix = ""
        for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
            if abs(v) < 1024 { break }
            prefix = p
            v /= 1024
        }
        return g(v, 4) + prefix
    }

    static func humanizeDuration(_ value: Double) -> String {
        var v = value
        if !v.isFinite { return g(v, 4) }
        if v == 0 { return g(v, 4) + "s" }
        if abs(v) >= 1 {
            var sign = ""
            if v < 0 { sign = "-"; v = -v }
            let d = Int64(min(v, 9.2e18))
            let seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400
            if days != 0 { return "\(sign)\(days)d \(hours)h \(minutes)m \(seconds)s" }
            if hours != 0 { return "\(sign)\(hours)h \(minutes)m \(seconds)s" }
            if minutes != 0 { return "\(sign)\(minutes)m \(seconds)s" }
            return sign + g(v, 4) + "s"
        }
        var prefix = ""
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if abs(v) >= 1 { break }
            prefix = p
            v *= 1000
        }
        return g(v, 4) + prefix + "s"
    }

    /// Go's `fmt.Sprint(time.Time)` of a Unix time in seconds, in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
    static func timestamp(_ seconds: Double) -> String {
        if !seconds.isFinite { return g(seconds, 4) }
        let nanos = Int64(max(min(seconds * 1e9, 9.2e18), -9.2e18))
        var whole = nanos / 1_000_000_000, frac = nanos % 1_000_000_000
        if frac < 0 { whole -= 1; frac += 1_000_000_000 }
        var tm = tm()
        var t = time_t(whole)
        gmtime_r(&t, &tm)
        var out = String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
        if frac != 0 {
            var f = String(format: "%09lld", frac)
            while f.hasSuffix("0") { f.removeLast() }
            out += "." + f
        }
        return out + " +0000 UTC"
    }

    /// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %x %q %%`, with flags, width and
    /// precision. A verb without an argument prints `%!v(MISSING)` as Go does.
    static func printf(_ format: String, _ args: [AlertTemplate.Value]) -> String {
        var out = ""
        var next = 0
        var chars = Array(format)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == "%" else { out.append(c); continue }
            var spec = "%"
            while let f = chars.first, "+-# 0".contains(f) { spec.append(f); chars = chars.dropFirst() }
            while let d = chars.first, d.isNumber || d == "." { spec.append(d); chars = chars.dropFirst() }
            guard let verb = chars.first else { out += "%!(NOVERB)"; break }
            chars = chars.dropFirst()
            if verb == "%" { out += "%"; continue }
            guard next < args.count else { out += "%!\(verb)(MISSING)"; continue }
            let arg = args[next]
            next += 1
            switch verb {
            case "s", "v":
                out += pad(arg.printed, spec)
            case "q":
                out += "\"" + arg.printed.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            case "d":
                if let d = try? arg.number(), d.isFinite, d == d.rounded(), abs(d) < 9.2e18 { out += String(format: spec + "lld", Int64(d)) }
                else { out += "%!d(\(arg.printed))" }
            case "f", "F", "e", "E", "g", "G":
                if let d = try? arg.number() {
                    if !d.isFinite { out += d.isNaN ? "NaN" : (d < 0 ? "-Inf" : "+Inf") } else { out += String(format: spec + String(verb), d) }
                } else { out += "%!\(verb)(string=\(arg.printed))" }
            case "x", "X":
                if let d = try? arg.number(), d == d.rounded(), abs(d) < 9.2e18 { out += String(format: spec + "ll" + String(verb), Int64(d)) }
                else { out += arg.printed.utf8.map { String(format: verb == "x" ? "%02x" : "%02X", $0) }.joined() }
            default:
                out += "%!\(verb)(\(arg.printed))"
            }
        }
        if next < args.count { out += "%!(EXTRA " + args[next...].map(\.printed).joined(separator: ", ") + ")" }
        return out
    }
}

extension GoFormat {
    /// `text` under a `%s` spec's precision (a cut) and width (padding, on the right with `-`).
    static func pad(_ text: String, _ spec: String) -> String {
        let body = spec.dropFirst().drop { "+-# 0".contains($0) }
        let flags = spec.dropFirst().prefix { "+-# 0".contains($0) }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        var s = text
        if parts.count > 1, let p = Int(parts[1]) { s = String(s.prefix(p)) }
        if let w = Int(parts.first ?? ""), s.count < w {
            let fill = String(repeating: " ", count: w - s.count)
            s = flags.contains("-") ? s + fill : fill + s
        }
        return s
    }
}
