/// An append-only bit stream, most significant bit first, as the Gorilla paper and Prometheus' chunkenc use.
struct BitWriter: Sendable {
    private(set) var bytes: [UInt8] = []
    /// Bits still free in the last byte (0 when a new byte is needed).
    private var free = 0

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    @inline(__always)
    mutating func writeBit(_ bit: Bool) {
        if free == 0 { bytes.append(0); free = 8 }
        free -= 1
        if bit { bytes[bytes.count - 1] |= 1 << UInt8(free) }
    }

    /// Writes the low `count` bits of `value` (count ≤ 64).
    @inline(__always)
    mutating func writeBits(_ value: UInt64, _ count: Int) {
        var n = count
        while n > 0 {
            if free == 0 { bytes.append(0); free = 8 }
            let take = min(free, n)
            let shifted = (value >> UInt64(n - take)) & ((1 << UInt64(take)) - 1)
            bytes[bytes.count - 1] |= UInt8(shifted << UInt64(free - take))
            free -= take
            n -= take
        }
    }

    mutating func writeUVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 { writeBits((x & 0x7f) | 0x80, 8); x >>= 7 }
        writeBits(x, 8)
    }

    mutating func writeVarint(_ v: Int64) {
        writeUVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }
}

/// Reads a ``BitWriter``'s output.
struct BitReader {
    private let bytes: [UInt8]
    private var pos = 0 // bit position

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var bitsLeft: Int { bytes.count * 8 - pos }

    @inline(__always)
    mutating func readBit() throws -> Bool {
        guard pos < bytes.count * 8 else { throw ChunkError.truncated }
        let b = bytes[pos >> 3] & (0x80 >> UInt8(pos & 7)) != 0
        pos += 1
        return b
    }

    @inline(__always)
    mutating func readBits(_ count: Int) throws -> UInt64 {
        guard count <= bitsLeft else { throw ChunkError.truncated }
        var v: UInt64 = 0
        var n = count
        while n > 0 {
            let avail = 8 - (pos & 7)
            let take = min(avail, n)
            let byte = UInt64(bytes[pos >> 3])
            let bits = (byte >> UInt64(avail - take)) & ((1 << UInt64(take)) - 1)
            v = (v << UInt64(take)) | bits
            pos += take
            n -= take
        }
        return v
    }

    mutating func readUVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readBits(8)
            guard shift < 64 else { throw ChunkError.corrupt("varint overflow") }
            result |= (b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    mutating func readVarint() throws -> Int64 {
        let u = try readUVarint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }
}

/// Why encoded data — a chunk, a log record, a version block, a sync batch — could not be read or written.
/// Callers add which item it was.
public enum ChunkError: Error, Equatable, CustomStringConvertible {
    case truncated
    case corrupt(String)
    case outOfOrder(previous: Int64, next: Int64)

    public var description: String {
        switch self {
        case .truncated: return "truncated: the data ends before its last item"
        case .corrupt(let m): return "corrupt: \(m)"
        case .outOfOrder(let p, let n): return "sample at \(n) is not after the previous sample at \(p); samples must be appended in time order"
        }
    }
}
