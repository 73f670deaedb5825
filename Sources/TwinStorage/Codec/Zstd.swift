import CZstd

/// What the store takes from zstd: one-shot compression of packed blocks (version blocks on disk and in
/// sync batches). Streaming compression of a push session is the sync module's.
public enum Zstd {
    /// `input` compressed at `level`; nil when that is not smaller than `input` (or zstd fails).
    public static func compress(_ input: [UInt8], level: Int32) -> [UInt8]? {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = input.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level) } }
        guard ZSTD_isError(n) == 0, n < input.count else { return nil }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses `input`, which must expand to exactly `rawCount` bytes (the caller bounds it).
    public static func decompress(_ input: UnsafeRawBufferPointer, rawCount: Int) throws -> [UInt8] {
        guard rawCount > 0, input.count > 0 else { throw ChunkError.corrupt("empty zstd body") }
        // The frame states its size: a header claiming more than that is damage, not a reason to allocate.
        let stated = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        guard stated == UInt64(rawCount) else { throw ChunkError.corrupt("zstd frame of \(stated) bytes, header says \(rawCount)") }
        var out = [UInt8](repeating: 0, count: rawCount)
        let n = out.withUnsafeMutableBytes { dst in ZSTD_decompress(dst.baseAddress, rawCount, input.baseAddress, input.count) }
        guard ZSTD_isError(n) == 0 else { throw ChunkError.corrupt("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        guard n == rawCount else { throw ChunkError.corrupt("zstd body of \(n) bytes, header says \(rawCount)") }
        return out
    }
}
