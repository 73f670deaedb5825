import Foundation

/// A line-by-line reader of the Prometheus text exposition format and OpenMetrics text, with optional
/// timestamps, over raw bytes: what `hosttwin import` and bulk ingest read. Pure — no I/O.
///
/// Timestamps: Prometheus text gives integer milliseconds, OpenMetrics seconds (often fractional).
/// A timestamp with a fraction, or below 10^11 (which as milliseconds would be 1973), is read as
/// seconds; anything else as milliseconds.
public struct ExpositionParser {
    /// One meaningful line.
    public enum Line {
        /// A sample: the bytes of its series (`name{labels}`) within the buffer, value and time (ms).
        case sample(series: Range<Int>, value: Double, time: Int64?)
        /// `# TYPE name type`.
        case type(name: String, type: MetricType)
        /// `# HELP name text` (escapes `\\` and `\n` undone).
        case help(name: String, text: String)
    }

    /// Times outside years 1900–9999 are refused: they are a unit mistake, and keep arithmetic safe.
    public static let timeRange: ClosedRange<Int64> = -2_208_988_800_000...253_402_300_799_000

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    /// Line number of the line last returned (1-based), for error messages.
    public private(set) var lineNumber = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The next sample or TYPE line; nil at the end. A malformed line throws ``TwinError/badInput(_:)``
    /// naming its line number; the parser is then positioned after it, so reading can go on.
    public mutating func next() throws -> Line? {
        while pos < bytes.count {
            let start = pos
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            pos = end + 1
            lineNumber += 1
            var e = end
            if e > start, bytes[e - 1] == 0x0D { e -= 1 } // CRLF
            var s = start
            while s < e, bytes[s] == 0x20 || bytes[s] == 0x09 { s += 1 }
            guard s < e else { continue }
            if bytes[s] == 0x23 { // '#'
                if let t = try typeLine(s, e) { return t }
                continue
            }
            return try sampleLine(s, e)
        }
        return nil
    }

    private func text(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r]), as: UTF8.self) }

    private func typeLine(_ s: Int, _ e: Int) throws -> Line? {
        let line = text(s..<e)
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if words.count >= 3, words[1] == "HELP" {
            // The text is everything after the name, as written (it may hold any spacing).
            let afterName = line[words[2].endIndex...].drop { $0 == " " || $0 == "\t" }
            return .help(name: String(words[2]), text: Self.unescapeHelp(afterName))
        }
        guard words.count >= 2, words[1] == "TYPE" else { return nil } // UNIT, EOF, comments
        guard words.count == 4 else { throw TwinError.badInput("line \(lineNumber): TYPE needs a name and a type") }
        let t: MetricType
        switch words[3] {
        case "counter": t = .counter
        case "gauge": t = .gauge
        default: t = .untyped // histogram, summary, unknown, untyped, info, stateset, gaugehistogram
        }
        return .type(name: String(words[2]), type: t)
    }

    /// A HELP text's escapes undone: `\\` is a backslash, `\n` a newline; any other backslash stays.
    static func unescapeHelp(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                out += c == "n" ? "\n" : c == "\\" ? "\\" : "\\" + String(c)
                escaped = false
            } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        if escaped { out += "\\" }
        return out
    }

    private func sampleLine(_ s: Int, _ e: Int) throws -> Line {
        // The series: a name, then optionally {...} with quoted values that may hold spaces, braces, escapes.
        var i = s
        while i < e, bytes[i] != 0x7B, bytes[i] != 0x20, bytes[i] != 0x09 { i += 1 }
        if i < e, bytes[i] == 0x7B {
            var inQuote = false
            i += 1
            while i < e {
                let c = bytes[i]
                if inQuote {
                    if c == 0x5C { i += 1 } else if c == 0x22 { inQuote = false }
                } else if c == 0x22 { inQuote = true } else if c == 0x7D { break }
                i += 1
            }
            guard i < e else { throw TwinError.badInput("line \(lineNumber): unterminated label set") }
            i += 1
        }
        let series = s..<i
        guard i > s, bytes[s] != 0x7B else { throw TwinError.badInput("line \(lineNumber): no metric name") }
        var fields: [Range<Int>] = []
        var j = i
        while j < e {
            while j < e, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
            guard j < e else { break }
            let f = j
            while j < e, bytes[j] != 0x20, bytes[j] != 0x09 { j += 1 }
            fields.append(f..<j)
        }
        // OpenMetrics exemplars start with '#': ignore them.
        if let hash = fields.firstIndex(where: { bytes[$0.lowerBound] == 0x23 }) { fields.removeSubrange(hash...) }
        guard fields.count == 1 || fields.count == 2 else {
            throw TwinError.badInput("line \(lineNumber): expected `series value [timestamp]`, got \(fields.count) fields after the series")
        }
        guard let value = Self.double(bytes, fields[0]) else {
            throw TwinError.badInput("line \(lineNumber): value '\(text(fields[0]))' is not a number")
        }
        var time: Int64?
        if fields.count == 2 {
            guard let t = Self.timestamp(bytes, fields[1]), Self.timeRange.contains(t) else {
                throw TwinError.badInput("line \(lineNumber): timestamp '\(text(fields[1]))' is not a time between 1900 and 9999 (ms or s since the epoch)")
            }
            time = t
        }
        return .sample(series: series, value: value, time: time)
    }

    /// A float as strtod reads it, plus the exposition spellings NaN, +Inf, -Inf.
    static func double(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Double? {
        let n = r.count
        guard n > 0, n < 64 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf in
            for k in 0..<n { buf[k] = CChar(bitPattern: b[r.lowerBound + k]) }
            buf[n] = 0
            var endp: UnsafeMutablePointer<CChar>?
            let v = strtod(buf.baseAddress!, &endp)
            guard endp == buf.baseAddress! + n else { return nil }
            // strtod also takes hex floats and "infinity"; the format allows only these spellings.
            let first = b[r.lowerBound]
            if !v.isFinite || v.isNaN {
                let word = String(decoding: UnsafeRawBufferPointer(rebasing: b[r]), as: UTF8.self)
                guard ["NaN", "+Inf", "-Inf", "Inf", "nan", "+inf", "-inf", "inf"].contains(word) else { return nil }
            } else if n > 1, first == 0x30, b[r.lowerBound + 1] | 0x20 == 0x78 { return nil }
            return v
        }
    }

    /// Integer milliseconds, or seconds (with a fraction or below 10^11) converted to milliseconds.
    static func timestamp(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int64? {
        var neg = false
        var i = r.lowerBound
        if b[i] == 0x2D { neg = true; i += 1 }
        var whole: Int64 = 0
        var digits = 0
        while i < r.upperBound, b[i] >= 0x30, b[i] <= 0x39 {
            let (m, o1) = whole.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(b[i] - 0x30))
            guard !o1, !o2 else { return nil }
            whole = a
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        if i == r.upperBound {
            let v = neg ? -whole : whole
            return abs(v) < 100_000_000_000 ? v * 1000 : v
        }
        guard b[i] == 0x2E, let secs = double(b, r), secs.isFinite, abs(secs) < 1e13 else { return nil }
        return Int64((secs * 1000).rounded())
    }
}
