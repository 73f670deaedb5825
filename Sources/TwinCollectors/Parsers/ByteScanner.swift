import Glibc

/// Allocation-free scanning of kernel text files: lines, whitespace-separated fields and numbers read
/// straight from the bytes. The per-tick parsers use it so that reading a file costs about what the
/// kernel charges for it, not string splitting.
struct ByteScanner {
    let b: UnsafeBufferPointer<UInt8>
    var pos = 0

    init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

    /// The next line's byte range (without the newline), or nil at the end.
    @inline(__always)
    mutating func nextLine() -> Range<Int>? {
        guard pos < b.count else { return nil }
        let start = pos
        while pos < b.count, b[pos] != 10 { pos += 1 }
        let end = pos
        if pos < b.count { pos += 1 }
        return start..<end
    }

    /// Splits a line range into its fields (separated by spaces and tabs).
    @inline(__always)
    func fields(_ line: Range<Int>, into out: inout [Range<Int>]) {
        out.removeAll(keepingCapacity: true)
        var i = line.lowerBound
        while i < line.upperBound {
            while i < line.upperBound, b[i] == 32 || b[i] == 9 { i += 1 }
            if i >= line.upperBound { break }
            let s = i
            while i < line.upperBound, b[i] != 32, b[i] != 9 { i += 1 }
            out.append(s..<i)
        }
    }

    func string(_ r: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self)
    }

    /// Whether the bytes of `r` equal `text`'s UTF-8.
    func equals(_ r: Range<Int>, _ text: StaticString) -> Bool {
        guard r.count == text.utf8CodeUnitCount else { return false }
        let p = text.utf8Start
        for i in 0..<r.count where b[r.lowerBound + i] != p[i] { return false }
        return true
    }

    func hasPrefix(_ r: Range<Int>, _ text: StaticString) -> Bool {
        guard r.count >= text.utf8CodeUnitCount else { return false }
        let p = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount where b[r.lowerBound + i] != p[i] { return false }
        return true
    }

    /// A decimal number (`123`, `-4`, `0.21`) read from the bytes; other forms go through `Double(String)`.
    /// Integer/10^k is correctly rounded for the digit counts the kernel prints, so it equals strtod's result.
    @inline(__always)
    func number(_ r: Range<Int>) -> Double? {
        guard !r.isEmpty else { return nil }
        var i = r.lowerBound
        var negative = false
        if b[i] == 45 { negative = true; i += 1 } else if b[i] == 43 { i += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var fraction = 0
        var seenPoint = false
        while i < r.upperBound {
            let c = b[i]
            if c >= 48 && c <= 57 {
                if digits >= 18 { return Double(string(r)) }
                mantissa = mantissa * 10 + UInt64(c - 48)
                digits += 1
                if seenPoint { fraction += 1 }
            } else if c == 46 && !seenPoint {
                seenPoint = true
            } else {
                return Double(string(r))
            }
            i += 1
        }
        guard digits > 0 else { return nil }
        if fraction > 0 && digits > 15 { return Double(string(r)) }
        var v = Double(mantissa)
        if fraction > 0 { v /= pow10[fraction] }
        return negative ? -v : v
    }
}

private let pow10: [Double] = (0...22).map { p in (0..<p).reduce(1.0) { a, _ in a * 10 } }

extension String {
    /// Calls `body` with the string's UTF-8 bytes (for the byte parsers' string entry points).
    func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        var s = self
        return s.withUTF8(body)
    }
}

/// Remembers, per line position, a line's key bytes and what the collector derived from them (a metric
/// name), so a file whose layout does not change between ticks costs no string work after the first.
final class LineKeyCache<Value> {
    private var keys: [[UInt8]] = []
    private var values: [Value?] = []

    /// The cached value for line `index` if its key bytes are unchanged; otherwise `make`'s result, cached.
    @inline(__always)
    func value(_ index: Int, _ key: Range<Int>, _ s: ByteScanner, _ make: () -> Value?) -> Value? {
        if index < keys.count, keys[index].count == key.count,
           (key.isEmpty || keys[index].withUnsafeBufferPointer({ memcmp($0.baseAddress!, s.b.baseAddress! + key.lowerBound, key.count) == 0 })) {
            return values[index]
        }
        while keys.count <= index { keys.append([]); values.append(nil) }
        keys[index] = Array(s.b[key])
        values[index] = make()
        return values[index]
    }
}
