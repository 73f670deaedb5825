import Foundation

/// Time handling for HostTwin: milliseconds since the Unix epoch everywhere, and the forms a person
/// types: RFC 3339, Unix seconds, `now`, and relative `-5m`, `-2h`, `-1d`, `-30s`, `-1w`.
public enum TwinTime {
    /// The current wall-clock time in milliseconds since the epoch.
    public static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// The longest duration accepted anywhere (1,000 years in ms). Durations and times come from users,
    /// URLs and files; bounding both keeps every sum and difference of two of them far from `Int64`'s ends.
    public static let maxDuration: Int64 = 1000 * 31_557_600_000
    /// Times are accepted within ±10,000 years of the epoch (RFC 3339 cannot write more).
    public static let maxTime: Int64 = 10 * maxDuration

    /// Parses a time as a user writes it, relative to `now` (ms). The result lies within ±``maxTime``;
    /// anything further is refused, never wrapped or trapped on.
    public static func parse(_ text: String, now: Int64 = nowMillis()) throws -> Int64 {
        let s = text.trimmingCharacters(in: .whitespaces)
        if s.isEmpty { throw TwinError.badInput("empty time; use RFC 3339, Unix seconds, now, or -5m/-2h") }
        if s == "now" { return now }
        if s.hasPrefix("-") || s.hasPrefix("+") {
            let d: Int64
            do { d = try parseDuration(String(s.dropFirst())) } catch {
                throw TwinError.badInput("cannot read time '\(text)': \(error)")
            }
            let (t, overflow) = s.hasPrefix("-") ? now.subtractingReportingOverflow(d) : now.addingReportingOverflow(d)
            guard !overflow, abs(t) <= maxTime else { throw TwinError.badInput("time '\(text)' is out of range (at most 10,000 years from 1970)") }
            return t
        }
        if let secs = Double(s), secs.isFinite, !s.contains("e"), !s.contains("E") {
            guard secs >= 0, secs < 1e11 else { throw TwinError.badInput("time \(s): Unix seconds out of range") }
            return Int64((secs * 1000).rounded())
        }
        if let t = parseRFC3339(s) { return t }
        throw TwinError.badInput("cannot read time '\(text)': use RFC 3339 (2026-11-28T03:00:00Z), Unix seconds, now, or relative like -5m, -2h, -1d")
    }

    /// Parses a duration like `1s`, `500ms`, `5m`, `2h`, `1d`, `1w`, or `1h30m`, into milliseconds; at
    /// most ``maxDuration``.
    public static func parseDuration(_ text: String) throws -> Int64 {
        var total: Int64 = 0
        var num = ""
        var chars = Array(text)[...]
        guard !chars.isEmpty else { throw TwinError.badInput("empty duration") }
        while let c = chars.first {
            if c.isNumber || c == "." {
                num.append(c)
                chars = chars.dropFirst()
                continue
            }
            var unit = ""
            while let u = chars.first, u.isLetter { unit.append(u); chars = chars.dropFirst() }
            guard let n = Double(num), !unit.isEmpty else { throw TwinError.badInput("cannot read duration '\(text)': use forms like 1s, 500ms, 5m, 2h, 1d") }
            let mult: Double
            switch unit {
            case "ms": mult = 1
            case "s": mult = 1000
            case "m": mult = 60_000
            case "h": mult = 3_600_000
            case "d": mult = 86_400_000
            case "w": mult = 604_800_000
            case "y": mult = 31_536_000_000
            default: throw TwinError.badInput("unknown duration unit '\(unit)' in '\(text)': use ms, s, m, h, d, w, y")
            }
            let part = (n * mult).rounded(.down)
            guard part <= Double(maxDuration), total + Int64(part) <= maxDuration else {
                throw TwinError.badInput("duration '\(text)' is too long (at most 1,000 years)")
            }
            total += Int64(part)
            num = ""
        }
        guard num.isEmpty else { throw TwinError.badInput("duration '\(text)' lacks a unit (s, m, h, d)") }
        return total
    }

    /// RFC 3339 with optional fraction; also accepts a space for `T` and a missing zone (UTC).
    public static func parseRFC3339(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for i in from..<(from + len) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 10, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2) else { return nil }
        var h = 0, mi = 0, sec = 0, ms = 0, offset = 0
        var i = 10
        if i < b.count {
            guard b[i] == 84 || b[i] == 116 || b[i] == 32, let hh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let mm = num(i + 4, 2) else { return nil }
            h = hh; mi = mm
            i += 6
            if i < b.count, b[i] == 58 {
                guard let ss = num(i + 1, 2) else { return nil }
                sec = ss
                i += 3
                if i < b.count, b[i] == 46 {
                    i += 1
                    var scale = 100
                    while i < b.count, b[i] >= 48, b[i] <= 57 { ms += Int(b[i] - 48) * scale; scale /= 10; i += 1 }
                }
            }
            if i < b.count {
                if b[i] == 90 || b[i] == 122 { i += 1 }
                else if b[i] == 43 || b[i] == 45 {
                    guard let oh = num(i + 1, 2), b.count >= i + 6, b[i + 3] == 58, let om = num(i + 4, 2) else { return nil }
                    offset = (oh * 60 + om) * 60 * (b[i] == 43 ? 1 : -1)
                    i += 6
                } else { return nil }
            }
            guard i == b.count else { return nil }
        }
        guard (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        let days = daysFromCivil(y, mo, d)
        let secs = Int64(days) * 86400 + Int64(h * 3600 + mi * 60 + sec) - Int64(offset)
        return secs * 1000 + Int64(ms)
    }

    /// Formats milliseconds since the epoch as RFC 3339 UTC (`2026-11-28T03:00:00.250Z`; no fraction when whole).
    public static func rfc3339(_ ms: Int64) -> String {
        let secs = Int64((Double(ms) / 1000).rounded(.down))
        let frac = Int(ms - secs * 1000)
        let (days, rem) = daysAndSeconds(secs)
        let (y, m, d) = civilFromDays(days)
        var s = "\(y)-\(p2(m))-\(p2(d))T\(clock(rem))"
        if frac != 0 { s += "." + String(String(frac + 1000).dropFirst()) }
        return s + "Z"
    }

    /// Seconds since the epoch as HTTP's `Date` writes them (RFC 9110's IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT".
    public static func httpDate(_ seconds: Int64) -> String {
        let (days, rem) = daysAndSeconds(seconds)
        let (y, m, d) = civilFromDays(days)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        // 1970-01-01 was a Thursday.
        return "\(weekdays[((days + 4) % 7 + 7) % 7]), \(p2(d)) \(months[m - 1]) \(y) \(clock(rem)) GMT"
    }

    /// Whole days since the epoch (rounded down) and the seconds into the last of them.
    private static func daysAndSeconds(_ seconds: Int64) -> (days: Int, seconds: Int) {
        let days = Int((Double(seconds) / 86400).rounded(.down))
        return (days, Int(seconds - Int64(days) * 86400))
    }

    /// "HH:MM:SS" of seconds into a day.
    private static func clock(_ s: Int) -> String { "\(p2(s / 3600)):\(p2(s / 60 % 60)):\(p2(s % 60))" }

    private static func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

    // Howard Hinnant's civil-date algorithms.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

extension Int64 {
    /// The integer nearest below `value`, saturating at `Int64`'s ends (NaN is 0). For numbers read from
    /// outside (/proc, files, requests), where `Int64(_:)` would trap on `1e300`.
    public init(saturating value: Double) {
        if value.isNaN { self = 0 }
        else if value >= 9.223372036854775e18 { self = .max }
        else if value <= -9.223372036854775e18 { self = .min }
        else { self = Int64(value.rounded(.down)) }
    }
}
