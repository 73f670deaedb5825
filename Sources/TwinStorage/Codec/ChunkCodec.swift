/// The format of sealed chunks and rollup blocks: one timestamp column and one or more value columns,
/// each encoded the way that measures smallest for its data, the body deflated when that is smaller,
/// and a CRC-32 over the whole blob (see docs/format/chunks.md).
///
/// ```
/// u8 flags (bit 0: body deflated) · uvarint count · [uvarint raw body size, if deflated] · body · u32 crc32
/// body = timestamps · column₁ … columnₖ
/// timestamps = varint t₀ · uvarint runs · runs × (uvarint length, varint delta)
/// column = u8 kind: 1 decimal → u8 exponent · u8 order · uvarint gcd · count × varint residual
///                   2 XOR     → Gorilla XOR bit stream of the values alone
/// ```
///
/// *Decimal* (as VictoriaMetrics does): when every value is `m / 10^e` exactly for integers `m` below
/// 2^53, the column stores the integers differenced `order` times (0, 1 or 2 — whichever is smallest),
/// divided by their greatest common divisor (memory grows in pages). Anything else — NaN, ±Inf, -0.0,
/// ratios with long fractions — falls back to the XOR float encoding, bit-exact.
public enum ChunkCodec {
    /// At most this many samples in one blob (a sanity bound for decoding untrusted bytes).
    static let maxCount = 1 << 24

    /// Encodes `times` (strictly increasing) and `columns` (each `times.count` long) as a blob standing
    /// alone: the body deflated when that is smaller, and a CRC.
    public static func encode(times: [Int64], columns: [[Double]]) throws -> [UInt8] {
        let body = try encodeBody(times: times, columns: columns)
        var out = ByteWriter(capacity: body.count / 2 + 16)
        if body.count > 48, let z = Zlib.deflate(body), z.count + 4 < body.count {
            out.u8(1)
            out.uvarint(UInt64(times.count))
            out.uvarint(UInt64(body.count))
            out.append(z)
        } else {
            out.u8(0)
            out.uvarint(UInt64(times.count))
            out.append(body)
        }
        out.u32(Zlib.crc32(out.bytes))
        return out.bytes
    }

    /// Encodes a member of a group row (``GroupBlock``): `uvarint count · body`, neither deflated nor
    /// checksummed on its own — the row's data is, as a whole.
    public static func encodeMember(times: [Int64], columns: [[Double]]) throws -> [UInt8] {
        let body = try encodeBody(times: times, columns: columns)
        var out = ByteWriter(capacity: body.count + 4)
        out.uvarint(UInt64(times.count))
        out.append(body)
        return out.bytes
    }

    /// Decodes a member of a group row with `columnCount` value columns.
    public static func decodeMember(_ member: ArraySlice<UInt8>, columnCount: Int) throws -> (times: [Int64], columns: [[Double]]) {
        try member.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            let count = try r.count(limit: maxCount)
            guard count > 0 else { throw ChunkError.corrupt("empty chunk") }
            return try decodeBody(&r, count: count, columnCount: columnCount)
        }
    }

    /// Decodes a one-column member, appending its samples to `t` and `v`; returns how many. On an error
    /// the arrays may hold part of the member.
    public static func decodeMember(_ member: ArraySlice<UInt8>, appendingTo t: inout [Int64], _ v: inout [Double]) throws -> Int {
        try member.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            let count = try r.count(limit: maxCount)
            guard count > 0 else { throw ChunkError.corrupt("empty chunk") }
            try decodeTimes(&r, count: count, appendingTo: &t)
            try decodeColumn(&r, count: count, appendingTo: &v)
            guard r.remaining == 0 else { throw ChunkError.corrupt("\(r.remaining) bytes after the last column") }
            return count
        }
    }

    /// One series' samples as a member of a group row, and back.
    public static func encodeMember(_ samples: [(Int64, Double)]) throws -> [UInt8] {
        try encodeMember(times: samples.map(\.0), columns: [samples.map(\.1)])
    }

    public static func decodeMember(_ member: ArraySlice<UInt8>) throws -> [(Int64, Double)] {
        let (t, c) = try decodeMember(member, columnCount: 1)
        return Array(zip(t, c[0]))
    }

    private static func encodeBody(times: [Int64], columns: [[Double]]) throws -> [UInt8] {
        precondition(columns.allSatisfy { $0.count == times.count }, "column length differs from timestamp count")
        guard !times.isEmpty else { throw ChunkError.corrupt("empty chunk") }
        for i in 1..<max(times.count, 1) {
            guard times[i] > times[i - 1] else { throw ChunkError.outOfOrder(previous: times[i - 1], next: times[i]) }
            guard !times[i].subtractingReportingOverflow(times[i - 1]).overflow else { throw ChunkError.corrupt("timestamps \(times[i - 1]) and \(times[i]) are too far apart") }
        }
        var body = ByteWriter(capacity: times.count * 2)
        encodeTimes(times, into: &body)
        for c in columns { encodeColumn(c, into: &body) }
        return body.bytes
    }

    /// The bytes before a blob's trailing CRC-32, once it matches them (chunks, version blocks, group
    /// directories): a blob shorter than `minimum` is truncated; a mismatch throws `mismatch`.
    static func checked(_ raw: UnsafeRawBufferPointer, minimum: Int, _ mismatch: String) throws -> UnsafeRawBufferPointer {
        guard raw.count >= minimum else { throw ChunkError.truncated }
        let payload = UnsafeRawBufferPointer(rebasing: raw[0..<raw.count - 4])
        var tail = ByteReader(raw, at: raw.count - 4)
        guard try tail.u32() == Zlib.crc32(payload) else { throw ChunkError.corrupt(mismatch) }
        return payload
    }

    /// `payload` with its CRC-32 appended, as a blob ends (for tools, and for fuzzing past the checksum).
    public static func withChecksum(_ payload: [UInt8]) -> [UInt8] {
        var out = ByteWriter(capacity: payload.count + 4)
        out.append(payload)
        out.u32(Zlib.crc32(payload))
        return out.bytes
    }

    /// Encodes one series' samples as a blob standing alone.
    public static func encode(_ samples: [(Int64, Double)]) throws -> [UInt8] {
        try encode(times: samples.map(\.0), columns: [samples.map(\.1)])
    }

    /// Decodes a blob with `columnCount` value columns, checking its CRC first.
    public static func decode(_ blob: [UInt8], columnCount: Int) throws -> (times: [Int64], columns: [[Double]]) {
        try blob.withUnsafeBytes { raw in
            let payload = try checked(raw, minimum: 6, "checksum mismatch")
            var r = ByteReader(payload)
            let flags = try r.u8()
            guard flags <= 1 else { throw ChunkError.corrupt("unknown flags \(flags)") }
            let count = try r.count(limit: maxCount)
            guard count > 0 else { throw ChunkError.corrupt("empty chunk") }
            if flags == 1 {
                let rawSize = try r.count(limit: maxCount * 16 * (columnCount + 1))
                let body = try Zlib.inflate(UnsafeRawBufferPointer(rebasing: payload[r.pos...]), rawCount: rawSize)
                return try body.withUnsafeBytes { b in
                    var br = ByteReader(b)
                    return try decodeBody(&br, count: count, columnCount: columnCount)
                }
            }
            return try decodeBody(&r, count: count, columnCount: columnCount)
        }
    }

    /// Decodes one series' chunk.
    public static func decode(_ blob: [UInt8]) throws -> [(Int64, Double)] {
        let (t, c) = try decode(blob, columnCount: 1)
        return Array(zip(t, c[0]))
    }

    private static func decodeBody(_ r: inout ByteReader, count: Int, columnCount: Int) throws -> (times: [Int64], columns: [[Double]]) {
        let times = try decodeTimes(&r, count: count)
        var cols: [[Double]] = []
        for _ in 0..<columnCount { cols.append(try decodeColumn(&r, count: count)) }
        guard r.remaining == 0 else { throw ChunkError.corrupt("\(r.remaining) bytes after the last column") }
        return (times, cols)
    }

    // MARK: Timestamps: run-length encoded deltas

    static func encodeTimes(_ times: [Int64], into w: inout ByteWriter) {
        w.varint(times[0])
        var runs: [(Int, Int64)] = []
        for i in 1..<times.count {
            let d = times[i] - times[i - 1]
            if let last = runs.last, last.1 == d { runs[runs.count - 1].0 += 1 } else { runs.append((1, d)) }
        }
        w.uvarint(UInt64(runs.count))
        for (n, d) in runs { w.uvarint(UInt64(n)); w.varint(d) }
    }

    static func decodeTimes(_ r: inout ByteReader, count: Int) throws -> [Int64] {
        var out = [Int64]()
        try decodeTimes(&r, count: count, appendingTo: &out)
        return out
    }

    /// Decodes `count` timestamps, appending them to `out`.
    static func decodeTimes(_ r: inout ByteReader, count: Int, appendingTo out: inout [Int64]) throws {
        guard count > 0 else { throw ChunkError.corrupt("empty chunk") }
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        try out.withUnsafeMutableBufferPointer { all in
            let buf = UnsafeMutableBufferPointer(rebasing: all[base...])
            var t = try r.varint()
            buf[0] = t
            var filled = 1
            let runs = try r.count(limit: count)
            for _ in 0..<runs {
                let n = try r.count(limit: count - filled)
                let d = try r.varint()
                guard d > 0 else { throw ChunkError.corrupt("non-increasing timestamps") }
                // The run's last time must not overflow; then none before it does.
                let (span, o1) = d.multipliedReportingOverflow(by: Int64(n))
                guard !o1, !t.addingReportingOverflow(span).overflow else { throw ChunkError.corrupt("timestamp overflow") }
                for _ in 0..<n {
                    t &+= d
                    buf[filled] = t
                    filled += 1
                }
            }
            guard filled == count else { throw ChunkError.corrupt("timestamp runs cover \(filled) of \(count) samples") }
        }
    }

    // MARK: Value columns

    static let pow10: [Double] = (0...18).map { e in (0..<e).reduce(1.0) { x, _ in x * 10 } }

    static func encodeColumn(_ values: [Double], into w: inout ByteWriter) {
        if let (e, ints) = decimal(values) {
            w.u8(1)
            encodeInts(ints, exponent: e, into: &w)
        } else {
            w.u8(2)
            var bits = BitWriter(capacity: values.count * 2)
            var xor = XORValues()
            for v in values { xor.write(v.bitPattern, into: &bits) }
            w.uvarint(UInt64(bits.bytes.count))
            w.append(bits.bytes)
        }
    }

    /// The smallest exponent `e` with every value exactly `m / 10^e` (compared bit for bit, so -0.0,
    /// NaN and ±Inf never qualify), and the integers; nil when there is none up to 10^18.
    static func decimal(_ values: [Double]) -> (Int, [Int64])? {
        var e = 0
        for v in values {
            guard v.isFinite, v.bitPattern != (-0.0 as Double).bitPattern, abs(v) < 9.0e15 else { return nil }
            while e < pow10.count, !exact(v, e) { e += 1 }
            if e == pow10.count { return nil }
        }
        var ints = [Int64]()
        ints.reserveCapacity(values.count)
        let p = pow10[e]
        for v in values {
            let m = (v * p).rounded()
            guard abs(m) < 9.0e15, (m / p).bitPattern == v.bitPattern else { return nil }
            ints.append(Int64(m))
        }
        return (e, ints)
    }

    @inline(__always)
    private static func exact(_ v: Double, _ e: Int) -> Bool {
        let m = (v * pow10[e]).rounded()
        return abs(m) < 9.0e15 && (m / pow10[e]).bitPattern == v.bitPattern
    }

    static func encodeInts(_ ints: [Int64], exponent: Int, into w: inout ByteWriter) {
        // Pick the differencing order by the varint bytes it would take; an order that leaves only zeros
        // after its seeds (a constant, a steady counter) stores no residuals at all.
        var best = ints, bestOrder = 0
        var bestSize = ints.reduce(0) { $0 + ByteWriter.varintSize($1) }
        var current = ints
        var flat = ints.count <= 1
        for order in 1...2 where !flat {
            var next = current
            for i in stride(from: current.count - 1, through: order, by: -1) { next[i] = current[i] &- current[i - 1] }
            let size = next.reduce(0) { $0 + ByteWriter.varintSize($1) }
            if size < bestSize { best = next; bestOrder = order; bestSize = size }
            current = next
            if next.count <= order || next[order...].allSatisfy({ $0 == 0 }) { best = next; bestOrder = order; flat = true }
        }
        w.u8(UInt8(exponent))
        w.u8(UInt8(bestOrder))
        if flat {
            w.uvarint(0) // divisor 0: every residual is zero and none is stored
            for i in 0..<min(max(bestOrder, 1), best.count) { w.varint(best[i]) }
            return
        }
        var g: UInt64 = 0
        for i in bestOrder..<best.count { g = gcd(g, best[i].magnitude) }
        if g == 0 { g = 1 }
        w.uvarint(g)
        for i in 0..<best.count { w.varint(i < bestOrder ? best[i] : best[i] / Int64(g)) }
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }

    static func decodeColumn(_ r: inout ByteReader, count: Int) throws -> [Double] {
        var out = [Double]()
        try decodeColumn(&r, count: count, appendingTo: &out)
        return out
    }

    /// Decodes a column of `count` values, appending them to `out`.
    static func decodeColumn(_ r: inout ByteReader, count: Int, appendingTo out: inout [Double]) throws {
        let kind = try r.u8()
        out.reserveCapacity(out.count + count)
        switch kind {
        case 1:
            let e = Int(try r.u8())
            let order = Int(try r.u8())
            guard e < pow10.count, order <= 2 else { throw ChunkError.corrupt("bad decimal column header") }
            let g = try r.uvarint()
            guard g < 1 << 62 else { throw ChunkError.corrupt("bad decimal column divisor") }
            // Residuals read, scaled by the divisor and integrated (order 1: a running sum; order 2: a
            // running sum of a running sum) in one pass, straight into the output. A flat column stores
            // only its seeds: every residual after them is zero.
            let flat = g == 0
            let seeds = flat ? min(max(order, 1), count) : min(order, count)
            let p = pow10[e]
            let base = out.count
            out.append(contentsOf: repeatElement(0, count: count))
            try out.withUnsafeMutableBufferPointer { all in
                let buf = UnsafeMutableBufferPointer(rebasing: all[base...])
                var x: Int64 = 0, d: Int64 = 0
                for i in 0..<count {
                    var v: Int64 = 0
                    if i < seeds { v = try r.varint() } else if !flat { v = try r.varint() &* Int64(g) }
                    switch order {
                    case 0: x = v
                    case 1: x = i == 0 ? v : x &+ v
                    default:
                        if i == 0 { x = v } else {
                            d = i == 1 ? v : d &+ v
                            x = x &+ d
                        }
                    }
                    buf[i] = e == 0 ? Double(x) : Double(x) / p
                }
            }
        case 2:
            let size = try r.count(limit: r.remaining)
            var bits = BitReader(Array(try r.take(size)))
            var xor = XORValues()
            for _ in 0..<count { out.append(Double(bitPattern: try xor.read(&bits))) }
            guard bits.bitsLeft < 8 else { throw ChunkError.corrupt("\(bits.bitsLeft / 8) bytes after the XOR column") }
        default:
            throw ChunkError.corrupt("unknown column kind \(kind)")
        }
    }
}

/// Gorilla's XOR encoding of a stream of float bit patterns: the values of the head's chunks and the XOR
/// columns of sealed chunks.
/// The first value is written whole (64 bits); each next one as its XOR with the previous, reusing the
/// previous leading/trailing-zero window when it fits.
struct XORValues {
    private var previous: UInt64 = 0
    private var leading = 0
    private var trailing = 0
    private var started = false
    private var haveWindow = false

    @inline(__always)
    mutating func write(_ bits: UInt64, into w: inout BitWriter) {
        let x = bits ^ previous
        previous = bits
        guard started else { w.writeBits(bits, 64); started = true; return }
        if x == 0 { w.writeBit(false); return }
        w.writeBit(true)
        var lead = x.leadingZeroBitCount
        let trail = x.trailingZeroBitCount
        if lead >= 32 { lead = 31 }
        if haveWindow, lead >= leading, trail >= trailing {
            w.writeBit(false)
            w.writeBits(x >> UInt64(trailing), 64 - leading - trailing)
        } else {
            leading = lead
            trailing = trail
            haveWindow = true
            w.writeBit(true)
            w.writeBits(UInt64(lead), 5)
            let sig = 64 - lead - trail
            w.writeBits(UInt64(sig & 63), 6) // 64 is written as 0 (a XOR block is never empty)
            w.writeBits(x >> UInt64(trail), sig)
        }
    }

    @inline(__always)
    mutating func read(_ r: inout BitReader) throws -> UInt64 {
        guard started else { started = true; previous = try r.readBits(64); return previous }
        if try !r.readBit() { return previous }
        if try r.readBit() {
            leading = Int(try r.readBits(5))
            var sig = Int(try r.readBits(6))
            if sig == 0 { sig = 64 }
            guard leading + sig <= 64 else { throw ChunkError.corrupt("bad XOR block header") }
            trailing = 64 - leading - sig
            haveWindow = true
        }
        guard haveWindow else { throw ChunkError.corrupt("XOR block without a previous header") }
        let sig = 64 - leading - trailing
        previous ^= sig == 64 ? try r.readBits(64) : try r.readBits(sig) << UInt64(trailing)
        return previous
    }
}
