/// One tick's samples as stored in the head log: series ids ascending, then their values.
///
/// Layout (little-endian): `u32 count`, `count × u32 series id` (ascending), `count × f64 value`. Fixed
/// widths let a reader binary-search one series in a row without decoding the others.
enum HeadLogRecord {
    static func encode(_ samples: [(Int64, Double)]) -> [UInt8] {
        let sorted = samples.sorted { $0.0 < $1.0 }
        var out = [UInt8]()
        out.reserveCapacity(4 + sorted.count * 12)
        appendU32(&out, UInt32(sorted.count))
        for (id, _) in sorted { appendU32(&out, UInt32(truncatingIfNeeded: id)) }
        for (_, v) in sorted {
            var b = v.bitPattern.littleEndian
            withUnsafeBytes(of: &b) { out.append(contentsOf: $0) }
        }
        return out
    }

    private static func appendU32(_ out: inout [UInt8], _ v: UInt32) {
        var le = v.littleEndian
        withUnsafeBytes(of: &le) { out.append(contentsOf: $0) }
    }

    /// Checks the record's size against its count; returns the count.
    static func validate(_ bytes: [UInt8]) throws -> Int {
        guard bytes.count >= 4 else { throw ChunkError.corrupt("head log record shorter than its header") }
        let n = Int(u32(bytes, 0))
        guard bytes.count == 4 + n * 12 else { throw ChunkError.corrupt("head log record holds \(bytes.count) bytes for \(n) samples") }
        return n
    }

    @inline(__always)
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    @inline(__always)
    static func value(_ b: [UInt8], _ n: Int, _ i: Int) -> Double {
        let o = 4 + n * 4 + i * 8
        var bits: UInt64 = 0
        for k in 0..<8 { bits |= UInt64(b[o + k]) << UInt64(8 * k) }
        return Double(bitPattern: bits)
    }

    /// The value of series `id` in this record, if present (binary search).
    static func lookup(_ b: [UInt8], _ id: Int64) throws -> Double? {
        let n = try validate(b)
        var lo = 0, hi = n - 1
        let target = UInt32(truncatingIfNeeded: id)
        while lo <= hi {
            let mid = (lo + hi) / 2
            let v = u32(b, 4 + mid * 4)
            if v == target { return value(b, n, mid) }
            if v < target { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    /// Every (series id, value) of the record.
    static func decode(_ b: [UInt8]) throws -> [(Int64, Double)] {
        let n = try validate(b)
        return (0..<n).map { (Int64(u32(b, 4 + $0 * 4)), value(b, n, $0)) }
    }
}
