/// Encodes tick records against the earlier records of the same stream: the head log's segments, and
/// the ticks of a sync batch (docs/format/sync.md).
///
/// ```
/// tick  = u8 1 · varint Δt · uvarint (n << 1 | same-series flag) · [n × varint Δid] · changed bitmap (⌈n/8⌉ bytes)
///         · for each changed value: u8 (leading zero bytes << 4 | trailing zero bytes) · significant bytes of
///           (value bits XOR the series' previous value bits in this segment, 0 when none), little-endian
/// batch = u8 2 · uvarint n · n × (varint Δid · varint Δt · u64 value bits)
/// ```
/// A host emits the same series in the same order tick after tick and most values repeat, so a tick of
/// ~350 samples takes a few hundred bytes.
public struct TickRecordEncoder: Sendable {
    private var lastT: Int64 = 0
    private var lastIDs: [Int64] = []
    private var lastBits: [Int64: UInt64] = [:]
    /// Updates made by the record being written; applied by ``commitPending()`` once it is on disk.
    private var pendingBits: [(Int64, UInt64)] = []
    private var pendingIDs: [Int64]?
    private var pendingT: Int64 = 0
    /// `lastBits` holds values of the last tick's series only (nothing to forget for a base).
    private var onlyLastTick = true

    public init() {}

    /// A tick record; it becomes the base of the next one after ``commitPending()``.
    public mutating func tick(_ t: Int64, ids: [Int64], values: [Double]) -> [UInt8] { tickRecord(t, ids: ids, values: values).bytes }

    mutating func tickRecord(_ t: Int64, ids: [Int64], values: [Double]) -> ByteWriter {
        var w = ByteWriter(capacity: 16 + ids.count * 2)
        w.u8(1)
        w.varint(t &- lastT)
        let same = ids == lastIDs
        w.uvarint(UInt64(ids.count) << 1 | (same ? 1 : 0))
        if !same {
            var prev: Int64 = 0
            for id in ids { w.varint(id &- prev); prev = id }
        }
        let bitmapAt = w.bytes.count
        w.bytes.append(contentsOf: repeatElement(0, count: (ids.count + 7) / 8))
        pendingBits.removeAll(keepingCapacity: true)
        for i in 0..<ids.count {
            let bits = values[i].bitPattern
            let x = bits ^ (lastBits[ids[i]] ?? 0)
            guard x != 0 else { continue }
            w.bytes[bitmapAt + i >> 3] |= 1 << UInt8(i & 7)
            let lead = x.leadingZeroBitCount >> 3
            let trail = x.trailingZeroBitCount >> 3
            w.u8(UInt8(lead << 4 | trail))
            var s = x >> UInt64(trail * 8)
            for _ in 0..<(8 - lead - trail) { w.u8(UInt8(truncatingIfNeeded: s)); s >>= 8 }
            pendingBits.append((ids[i], bits))
        }
        pendingIDs = same ? nil : ids
        pendingT = t
        return w
    }

    mutating func batch(_ samples: [(Int64, Int64, Double)]) -> ByteWriter {
        var w = ByteWriter(capacity: 8 + samples.count * 12)
        w.u8(2)
        w.uvarint(UInt64(samples.count))
        var pid: Int64 = 0, pt: Int64 = 0
        for (id, t, v) in samples {
            w.varint(id &- pid)
            w.varint(t &- pt)
            w.u64(v.bitPattern)
            pid = id
            pt = t
        }
        pendingBits.removeAll(keepingCapacity: true)
        pendingIDs = nil
        pendingT = lastT
        return w
    }

    /// Makes the record just encoded the base of the next one (the log calls it once the record is on disk).
    public mutating func commitPending() {
        for (id, bits) in pendingBits { lastBits[id] = bits }
        if let ids = pendingIDs { lastIDs = ids; onlyLastTick = false }
        lastT = pendingT
        discardPending()
    }

    mutating func discardPending() {
        pendingBits.removeAll(keepingCapacity: true)
        pendingIDs = nil
    }

    /// Forgets the values of series the last tick did not have, so the next record depends on that tick
    /// alone (a sync batch's base: a tick rebuilt standing alone gives the same state).
    public mutating func keepLastTickOnly() {
        guard !onlyLastTick else { return } // a live stream's ticks mostly repeat the series list: nothing to do
        lastBits = TickRecordDecoder.only(lastIDs, of: lastBits)
        onlyLastTick = true
    }
}

/// Decodes the records of one stream in order.
public struct TickRecordDecoder: Sendable {
    private var lastT: Int64 = 0
    /// The time of the last tick record decoded (also for a tick without samples).
    public var lastTickTime: Int64 { lastT }
    private var lastIDs: [Int64] = []
    private var lastBits: [Int64: UInt64] = [:]
    /// `lastBits` holds values of the last tick's series only.
    private var onlyLastTick = true

    public init() {}

    /// Forgets the values of series the last tick did not have (see ``TickRecordEncoder/keepLastTickOnly()``).
    public mutating func keepLastTickOnly() {
        guard !onlyLastTick else { return }
        lastBits = Self.only(lastIDs, of: lastBits)
        onlyLastTick = true
    }

    static func only(_ ids: [Int64], of bits: [Int64: UInt64]) -> [Int64: UInt64] {
        var kept: [Int64: UInt64] = [:]
        kept.reserveCapacity(ids.count)
        for id in ids { if let b = bits[id] { kept[id] = b } }
        return kept
    }

    /// Decodes one record, calling `body` with each sample `(series id, t, value)`; throws on damage.
    public mutating func decode(_ payload: UnsafeRawBufferPointer, _ body: (Int64, Int64, Double) throws -> Void) throws {
        var r = ByteReader(payload)
        switch try r.u8() {
        case 1:
            let t = lastT &+ (try r.varint())
            let header = try r.uvarint()
            let n = Int(clamping: header >> 1)
            guard n <= payload.count * 8 else { throw ChunkError.corrupt("tick record announces \(n) samples") }
            var ids = lastIDs
            if header & 1 == 0 {
                onlyLastTick = false
                ids = []
                ids.reserveCapacity(n)
                var prev: Int64 = 0
                for _ in 0..<n { prev = prev &+ (try r.varint()); ids.append(prev) }
            } else if ids.count != n {
                throw ChunkError.corrupt("tick record repeats a series list of \(ids.count) with \(n) samples")
            }
            let bitmap = try r.take((n + 7) / 8)
            for i in 0..<n {
                var bits = lastBits[ids[i]] ?? 0
                if bitmap[i >> 3] & (1 << UInt8(i & 7)) != 0 {
                    let ctrl = try r.u8()
                    let lead = Int(ctrl >> 4), trail = Int(ctrl & 15)
                    guard lead + trail < 8 else { throw ChunkError.corrupt("bad value header") }
                    var x: UInt64 = 0
                    for k in 0..<(8 - lead - trail) { x |= UInt64(try r.u8()) << UInt64(8 * k) }
                    bits ^= x << UInt64(trail * 8)
                    lastBits[ids[i]] = bits
                }
                try body(ids[i], t, Double(bitPattern: bits))
            }
            lastIDs = ids
            lastT = t
        case 2:
            let n = try r.count(limit: payload.count / 10)
            var id: Int64 = 0, t: Int64 = 0
            for _ in 0..<n {
                id = id &+ (try r.varint())
                t = t &+ (try r.varint())
                try body(id, t, Double(bitPattern: try r.u64()))
            }
        case let type:
            throw ChunkError.corrupt("unknown record type \(type)")
        }
        guard r.remaining == 0 else { throw ChunkError.corrupt("\(r.remaining) bytes after the record") }
    }
}

/// Head-log records decoded as a reader decodes a segment's records, for tools and the fuzz targets.
public enum LogRecords {
    /// The samples `(series id, t, value)` of `payloads` decoded in order; throws at the first record
    /// that cannot be decoded.
    public static func decode(_ payloads: [[UInt8]]) throws -> [(Int64, Int64, Double)] {
        var decoder = TickRecordDecoder()
        var out: [(Int64, Int64, Double)] = []
        for p in payloads {
            try p.withUnsafeBytes { raw in try decoder.decode(raw) { id, t, v in out.append((id, t, v)) } }
        }
        return out
    }
}
