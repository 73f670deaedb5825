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

/// Frames of a follow stream (`u64 big-endian outbox id · u32 big-endian length · batch`) from the chunks
/// they arrive in: a replica's read of a hub's outbox (`serve --follow`).
public struct FollowFrameReader {
    private var pending: [UInt8] = []

    public init() {}

    /// Adds `bytes`; returns the frames now complete, in order. Throws on a frame longer than a batch may
    /// be (nothing is allocated from the claimed length).
    public mutating func add(_ bytes: [UInt8]) throws -> [(id: Int64, batch: [UInt8])] {
        pending += bytes
        var out: [(id: Int64, batch: [UInt8])] = []
        var at = 0
        defer { pending.removeFirst(at) }
        while pending.count - at >= 12 {
            let id = pending[at..<at + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let length = Int(pending[at + 8..<at + 12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length <= SyncCodec.maxPayload + 4096 else { throw SyncError.malformed("a followed frame of \(length) bytes") }
            guard pending.count - at - 12 >= length else { break }
            out.append((Int64(bitPattern: id), Array(pending[at + 12..<at + 12 + length])))
            at += 12 + length
        }
        return out
    }
}
