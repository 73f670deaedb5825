import CLZ4

/// Decompresses an LZ4 frame (`.lz4` files, such as apt's package lists) with liblz4; nil when the data is
/// not a valid frame or would grow past `limit` bytes.
public func lz4FrameDecompress(_ input: UnsafeRawBufferPointer, limit: Int) -> [UInt8]? {
    var ctx: OpaquePointer?
    guard LZ4F_isError(LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))) == 0, let ctx else { return nil }
    defer { LZ4F_freeDecompressionContext(ctx) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256 * 1024)
    var offset = 0
    while offset < input.count {
        var srcSize = input.count - offset
        var dstSize = chunk.count
        let hint = chunk.withUnsafeMutableBytes { dst in
            LZ4F_decompress(ctx, dst.baseAddress, &dstSize, input.baseAddress! + offset, &srcSize, nil)
        }
        if LZ4F_isError(hint) != 0 { return nil }
        out.append(contentsOf: chunk[0..<dstSize])
        if out.count > limit { return nil }
        offset += srcSize
        if hint == 0 { return out }
        if srcSize == 0 && dstSize == 0 { return nil }
    }
    return nil // the frame ended early
}
