/// A Gorilla-style chunk of one series: delta-of-delta timestamps and XOR-compressed float values, laid
/// out as Prometheus' XOR chunk (see docs/format/chunks.md). Samples must be appended in strictly
/// increasing time order.
public struct XORChunkEncoder: Sendable {
    private var w = BitWriter()
    public private(set) var count = 0
    public private(set) var firstTime: Int64 = 0
    public private(set) var lastTime: Int64 = 0
    private var lastDelta: Int64 = 0
    private var lastValueBits: UInt64 = 0
    private var leading: Int = 0xff
    private var trailing: Int = 0

    public init() {}

    /// The encoded bytes (count is stored beside them, not inside).
    public var bytes: [UInt8] { w.bytes }

    public mutating func append(_ t: Int64, _ v: Double) throws {
        let bits = v.bitPattern
        switch count {
        case 0:
            w.writeVarint(t)
            w.writeBits(bits, 64)
            firstTime = t
        case 1:
            guard t > lastTime else { throw ChunkError.outOfOrder(previous: lastTime, next: t) }
            lastDelta = t - lastTime
            w.writeUVarint(UInt64(lastDelta))
            writeValue(bits)
        default:
            guard t > lastTime else { throw ChunkError.outOfOrder(previous: lastTime, next: t) }
            let delta = t - lastTime
            let dod = delta - lastDelta
            switch dod {
            case 0: w.writeBit(false)
            case -8191...8192: w.writeBits(0b10, 2); w.writeBits(UInt64(bitPattern: dod) & 0x3fff, 14)
            case -65535...65536: w.writeBits(0b110, 3); w.writeBits(UInt64(bitPattern: dod) & 0x1ffff, 17)
            case -524287...524288: w.writeBits(0b1110, 4); w.writeBits(UInt64(bitPattern: dod) & 0xfffff, 20)
            default: w.writeBits(0b1111, 4); w.writeBits(UInt64(bitPattern: dod), 64)
            }
            lastDelta = delta
            writeValue(bits)
        }
        lastTime = t
        lastValueBits = bits
        count += 1
    }

    private mutating func writeValue(_ bits: UInt64) {
        let x = bits ^ lastValueBits
        if x == 0 { w.writeBit(false); return }
        w.writeBit(true)
        var lead = x.leadingZeroBitCount
        let trail = x.trailingZeroBitCount
        if lead >= 32 { lead = 31 }
        if leading != 0xff, lead >= leading, trail >= trailing {
            w.writeBit(false)
            w.writeBits(x >> UInt64(trailing), 64 - leading - trailing)
        } else {
            leading = lead
            trailing = trail
            w.writeBit(true)
            w.writeBits(UInt64(lead), 5)
            let sig = 64 - lead - trail
            // 64 significant bits do not fit in 6 bits; 0 stands for 64 (it can never mean 0: x != 0).
            w.writeBits(UInt64(sig & 63), 6)
            w.writeBits(x >> UInt64(trail), sig)
        }
    }
}

/// Decodes a chunk written by ``XORChunkEncoder``.
public struct XORChunkDecoder {
    /// Decodes all `count` samples, throwing ``ChunkError`` on truncated or inconsistent data.
    public static func decode(_ bytes: [UInt8], count: Int, into out: inout [(Int64, Double)]) throws {
        guard count > 0 else { return }
        var r = BitReader(bytes)
        var t = try r.readVarint()
        var bits = try r.readBits(64)
        out.append((t, Double(bitPattern: bits)))
        if count == 1 { return }
        var delta = Int64(bitPattern: try r.readUVarint())
        guard delta > 0 else { throw ChunkError.corrupt("non-increasing timestamp") }
        t += delta
        var leading = 0, trailing = 0
        bits = try readValue(&r, bits, &leading, &trailing)
        out.append((t, Double(bitPattern: bits)))
        for _ in 2..<count {
            var dod: Int64
            if try !r.readBit() { dod = 0 }
            else if try !r.readBit() { dod = signExtend(try r.readBits(14), 14) }
            else if try !r.readBit() { dod = signExtend(try r.readBits(17), 17) }
            else if try !r.readBit() { dod = signExtend(try r.readBits(20), 20) }
            else { dod = Int64(bitPattern: try r.readBits(64)) }
            delta += dod
            guard delta > 0 else { throw ChunkError.corrupt("non-increasing timestamp") }
            t += delta
            bits = try readValue(&r, bits, &leading, &trailing)
            out.append((t, Double(bitPattern: bits)))
        }
    }

    private static func signExtend(_ v: UInt64, _ n: Int) -> Int64 {
        let shift = UInt64(64 - n)
        return Int64(bitPattern: v << shift) >> Int64(shift)
    }

    private static func readValue(_ r: inout BitReader, _ prev: UInt64, _ leading: inout Int, _ trailing: inout Int) throws -> UInt64 {
        if try !r.readBit() { return prev }
        if try r.readBit() {
            leading = Int(try r.readBits(5))
            var sig = Int(try r.readBits(6))
            if sig == 0 { sig = 64 }
            guard leading + sig <= 64 else { throw ChunkError.corrupt("bad XOR block header") }
            trailing = 64 - leading - sig
        }
        let sig = 64 - leading - trailing
        guard sig > 0 else { throw ChunkError.corrupt("XOR block without a previous header") }
        let x = try r.readBits(sig) << UInt64(trailing)
        return prev ^ x
    }
}
