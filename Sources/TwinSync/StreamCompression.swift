import CZstd

/// zstd over a whole push session: each frame is compressed with the context of the frames before it and
/// flushed at once, so a live tick costs what differs from the ticks before, while every batch inside
/// stays canonical (its bytes are what the hub decompresses).
public final class SyncStreamCompressor {
    private let context: OpaquePointer

    /// `level` is zstd's (3: its default).
    public init(level: Int32 = 3) {
        context = ZSTD_createCCtx()
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The compressed bytes of `input`, flushed (the receiver can decompress all of it now).
    public func compress(_ input: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(ZSTD_CStreamOutSize(), input.count / 2 + 64))
        try input.withUnsafeBytes { src in
            var inBuf = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            while true {
                let (remaining, produced) = try chunk.withUnsafeMutableBytes { dst -> (Int, Int) in
                    var outBuf = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                    let r = ZSTD_compressStream2(context, &outBuf, &inBuf, ZSTD_e_flush)
                    guard ZSTD_isError(r) == 0 else { throw SyncError.malformed("zstd: \(String(cString: ZSTD_getErrorName(r)))") }
                    return (r, outBuf.pos)
                }
                out += chunk[..<produced]
                if remaining == 0 { break }
            }
        }
        return out
    }
}

/// The hub's side of ``SyncStreamCompressor``: decompresses a session's bytes as they arrive.
public final class SyncStreamDecompressor {
    private let context: OpaquePointer
    /// Refuses a session that expands beyond this many bytes per call (a decompression bomb).
    public var maxOutput = 128 << 20

    public init() { context = ZSTD_createDCtx() }

    deinit { ZSTD_freeDCtx(context) }

    /// Whatever `input` decompresses to (possibly nothing yet, possibly several frames).
    public func decompress(_ input: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
        try input.withUnsafeBytes { src in
            var inBuf = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            while true {
                let produced = try chunk.withUnsafeMutableBytes { dst -> Int in
                    var outBuf = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                    let r = ZSTD_decompressStream(context, &outBuf, &inBuf)
                    guard ZSTD_isError(r) == 0 else { throw SyncError.malformed("zstd stream: \(String(cString: ZSTD_getErrorName(r)))") }
                    return outBuf.pos
                }
                out += chunk[..<produced]
                guard out.count <= maxOutput else { throw SyncError.malformed("the compressed stream expands beyond \(maxOutput) bytes") }
                // Done when the input is used up and the output buffer was not filled (nothing held back).
                if inBuf.pos == inBuf.size && produced < chunk.count { break }
            }
        }
        return out
    }
}
