import CZstd

/// What the store takes from zstd: one-shot compression of packed blocks (version blocks on disk and in
/// sync batches). Streaming compression of a push session is the sync module's.
public enum Zstd {
    /// `input` compressed at `level`, matching back at most 2^`windowLog` bytes (0: the level's own
    /// window); nil when that is not smaller than `input` (or zstd fails).
    ///
    /// The window bounds the compressor's memory at high levels: zstd sizes its match tables to the input,
    /// so level 15 takes 8.7 MB for a 500 KB block and 66 MB for 3 MB (a new store's first pack of every
    /// package, an hour's merged versions on a busy host). With a window of 2^18 it takes 4.6 MB at most.
    public static func compress(_ input: [UInt8], level: Int32, windowLog: Int32 = 0) -> [UInt8]? {
        guard let context = ZSTD_createCCtx() else { return nil }
        defer { ZSTD_freeCCtx(context) }
        guard ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)) == 0,
              ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, windowLog)) == 0 else { return nil }
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = input.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in ZSTD_compress2(context, dst.baseAddress, bound, src.baseAddress, src.count) } }
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
