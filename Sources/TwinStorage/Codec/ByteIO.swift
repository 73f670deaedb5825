/// Appends little-endian integers and LEB128 varints to a byte array: the byte-aligned half of the codecs
/// (chunk bodies, log records). ``BitWriter`` is the bit-aligned half.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    @inline(__always)
    public mutating func uvarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: x) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(x))
    }

    /// Zig-zag varint: small magnitudes of either sign take few bytes.
    @inline(__always)
    public mutating func varint(_ v: Int64) { uvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    public mutating func u32(_ v: UInt32) {
        for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(8 * k))) }
    }

    public mutating func u64(_ v: UInt64) {
        for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(8 * k))) }
    }

    public mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// Bytes a zig-zag varint of `v` takes (to compare encodings without writing them).
    @inline(__always)
    static func varintSize(_ v: Int64) -> Int {
        let u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        return u == 0 ? 1 : (70 - u.leadingZeroBitCount) / 7
    }
}

/// Reads what ``ByteWriter`` wrote; every read is bounds-checked and throws ``ChunkError/truncated``.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var pos: Int

    public init(_ bytes: UnsafeRawBufferPointer, at pos: Int = 0) {
        self.bytes = bytes
        self.pos = pos
    }

    public var remaining: Int { bytes.count - pos }

    @inline(__always)
    public mutating func u8() throws -> UInt8 {
        guard pos < bytes.count else { throw ChunkError.truncated }
        defer { pos += 1 }
        return bytes[pos]
    }

    @inline(__always)
    public mutating func uvarint() throws -> UInt64 {
        // One byte: most deltas and residuals of sealed chunks.
        if pos < bytes.count, bytes[pos] < 0x80 {
            defer { pos += 1 }
            return UInt64(bytes[pos])
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < bytes.count else { throw ChunkError.truncated }
            let b = bytes[pos]
            pos += 1
            guard shift < 64 else { throw ChunkError.corrupt("varint overflow") }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    @inline(__always)
    public mutating func varint() throws -> Int64 {
        let u = try uvarint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    /// A varint that must fit a count or length no larger than `limit`.
    public mutating func count(limit: Int) throws -> Int {
        let v = try uvarint()
        guard v <= UInt64(limit) else { throw ChunkError.corrupt("count \(v) exceeds \(limit)") }
        return Int(v)
    }

    public mutating func u32() throws -> UInt32 { UInt32(try littleEndian(4)) }

    public mutating func u64() throws -> UInt64 { try littleEndian(8) }

    private mutating func littleEndian(_ n: Int) throws -> UInt64 {
        guard remaining >= n else { throw ChunkError.truncated }
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(bytes[pos + k]) << UInt64(8 * k) }
        pos += n
        return v
    }

    public mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, remaining >= n else { throw ChunkError.truncated }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<pos + n])
    }
}
