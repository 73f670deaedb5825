import CZlib

/// The two things the store takes from zlib: raw-size-prefixed deflate for sealed chunk bodies and
/// CRC-32 for chunks and log records.
enum Zlib {
    static func crc32(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return UInt32(CZlib.crc32(UInt(seed), base.assumingMemoryBound(to: Bytef.self), UInt32(bytes.count)))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc32($0) } }

    /// Deflates `input` (zlib format) at `level`; nil when zlib fails (never expected).
    static func deflate(_ input: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var destLen = compressBound(UInt(input.count))
        var out = [UInt8](repeating: 0, count: Int(destLen))
        let rc = out.withUnsafeMutableBufferPointer { o in
            input.withUnsafeBufferPointer { i in compress2(o.baseAddress, &destLen, i.baseAddress, UInt(input.count), level) }
        }
        guard rc == Z_OK else { return nil }
        out.removeSubrange(Int(destLen)...)
        return out
    }

    /// Inflates `input` that must expand to exactly `rawCount` bytes.
    static func inflate(_ input: UnsafeRawBufferPointer, rawCount: Int) throws -> [UInt8] {
        guard rawCount > 0, input.count > 0 else { throw ChunkError.corrupt("empty deflated body") }
        var out = [UInt8](repeating: 0, count: rawCount)
        var destLen = UInt(rawCount)
        let rc = out.withUnsafeMutableBufferPointer { o in
            uncompress(o.baseAddress, &destLen, input.baseAddress?.assumingMemoryBound(to: Bytef.self), UInt(input.count))
        }
        guard rc == Z_OK, destLen == UInt(rawCount) else { throw ChunkError.corrupt("deflated body does not inflate (zlib error \(rc))") }
        return out
    }
}
