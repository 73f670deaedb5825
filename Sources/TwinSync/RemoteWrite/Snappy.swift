import CSnappy

/// Snappy's block format (not its framing format): what remote_write bodies are compressed with. Debian's
/// libsnappy through its C interface.
public enum Snappy {
    /// `bytes` compressed.
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return [0] } // the block of nothing: its length, 0, as a varint
        var capacity = snappy_max_compressed_length(bytes.count)
        var out = [UInt8](repeating: 0, count: capacity)
        let status = bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                snappy_compress(src.baseAddress!.assumingMemoryBound(to: CChar.self), src.count,
                                dst.baseAddress!.assumingMemoryBound(to: CChar.self), &capacity)
            }
        }
        precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of its own maximum length")
        out.removeSubrange(capacity...)
        return out
    }

    /// `bytes` uncompressed; refused when malformed or when it would be larger than `limit` bytes (the
    /// length is read from the block's header before anything is allocated). Throws ``SnappyError``.
    public static func uncompress(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        guard !bytes.isEmpty else { throw SnappyError("empty body: not a snappy block") }
        return try bytes.withUnsafeBytes { raw throws -> [UInt8] in
            let src = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            var length = 0
            guard snappy_uncompressed_length(src, raw.count, &length) == SNAPPY_OK else { throw SnappyError("not a snappy block (bad length header)") }
            guard length <= limit else { throw SnappyError("uncompresses to \(length) bytes, over the limit of \(limit)") }
            guard length > 0 else { return [] }
            var out = [UInt8](repeating: 0, count: length)
            var outLength = length
            let status = out.withUnsafeMutableBytes { snappy_uncompress(src, raw.count, $0.baseAddress!.assumingMemoryBound(to: CChar.self), &outLength) }
            guard status == SNAPPY_OK, outLength == length else { throw SnappyError("corrupt snappy block") }
            return out
        }
    }
}

/// Why a snappy block was refused.
public struct SnappyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
