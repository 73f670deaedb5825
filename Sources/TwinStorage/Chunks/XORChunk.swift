/// A Gorilla-style chunk of one series: delta-of-delta timestamps and XOR-compressed float values
/// (``XORValues``), laid out as Prometheus' XOR chunk (see docs/format/chunks.md). The head keeps its open
/// chunks this way; `v1` stores sealed them this way. Samples must be appended in strictly increasing
/// time order.
public struct XORChunkEncoder: Sendable {
    private var w = BitWriter()
    public private(set) var count = 0
    public private(set) var firstTime: Int64 = 0
    public private(set) var lastTime: Int64 = 0
    private var lastDelta: Int64 = 0
    private var values = XORValues()

    public init() {}

    /// The encoded bytes (count is stored beside them, not inside).
    public var bytes: [UInt8] { w.bytes }

    public mutating func append(_ t: Int64, _ v: Double) throws {
        if count > 0 {
            guard t > lastTime else { throw ChunkError.outOfOrder(previous: lastTime, next: t) }
            guard !t.subtractingReportingOverflow(lastTime).overflow else { throw ChunkError.corrupt("timestamps \(lastTime) and \(t) are too far apart") }
        }
        switch count {
        case 0:
            w.writeVarint(t)
            firstTime = t
        case 1:
            lastDelta = t - lastTime
            w.writeUVarint(UInt64(lastDelta))
        default:
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
        }
        values.write(v.bitPattern, into: &w)
        lastTime = t
        count += 1
    }
}

/// Decodes a chunk written by ``XORChunkEncoder``.
public struct XORChunkDecoder {
    /// Decodes all `count` samples, throwing ``ChunkError`` on truncated or inconsistent data.
    public static func decode(_ bytes: [UInt8], count: Int, into out: inout [(Int64, Double)]) throws {
        guard count > 0 else { return }
        var r = BitReader(bytes)
        var values = XORValues()
        var t = try r.readVarint()
        out.append((t, Double(bitPattern: try values.read(&r))))
        if count == 1 { return }
        var delta = Int64(bitPattern: try r.readUVarint())
        guard delta > 0 else { throw ChunkError.corrupt("non-increasing timestamp") }
        t = try advance(t, delta)
        out.append((t, Double(bitPattern: try values.read(&r))))
        for _ in 2..<count {
            var dod: Int64
            if try !r.readBit() { dod = 0 }
            else if try !r.readBit() { dod = signExtend(try r.readBits(14), 14) }
            else if try !r.readBit() { dod = signExtend(try r.readBits(17), 17) }
            else if try !r.readBit() { dod = signExtend(try r.readBits(20), 20) }
            else { dod = Int64(bitPattern: try r.readBits(64)) }
            delta = delta &+ dod
            guard delta > 0 else { throw ChunkError.corrupt("non-increasing timestamp") }
            t = try advance(t, delta)
            out.append((t, Double(bitPattern: try values.read(&r))))
        }
    }

    private static func advance(_ t: Int64, _ delta: Int64) throws -> Int64 {
        let (next, overflow) = t.addingReportingOverflow(delta)
        guard !overflow else { throw ChunkError.corrupt("timestamp overflow") }
        return next
    }

    private static func signExtend(_ v: UInt64, _ n: Int) -> Int64 {
        let shift = UInt64(64 - n)
        return Int64(bitPattern: v << shift) >> Int64(shift)
    }
}
