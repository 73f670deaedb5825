#if canImport(Glibc)
import Glibc
#endif

/// What a reader has decoded of one unsealed log segment, kept between reads: segments only grow
/// (one whole record per write) until sealed, so each read decodes just the records appended since the
/// last one. A long-lived reader (the server) then pays per query for filtering, not for decoding the
/// head window again.
struct LogTail: Sendable {
    /// The segment, open from the first read on: each later read costs one `fstat` (and a `pread` when it
    /// grew), not an `open` and a `close`. A segment sealed and unlinked meanwhile stays readable through
    /// it, and whole: the writer seals only what it finished writing.
    private var file: OpenFile?
    private var decoder = TickRecordDecoder()
    /// Bytes consumed: the header and whole, valid records.
    private(set) var offset = 0
    /// Samples by series id, in time order per series.
    private(set) var byID: [Int64: [(Int64, Double)]] = [:]
    private(set) var samples = 0
    private(set) var newest: Int64?
    private(set) var oldest: Int64?
    /// Why decoding stopped before the end of the file (a record still being written, or damage).
    private(set) var stopped: String?
    private(set) var fileBytes = 0

    /// Decodes what was appended to `path` since the last call. False when the file is gone before its
    /// first read (sealed and deleted meanwhile); once open it stays readable.
    mutating func advance(_ path: String) throws -> Bool {
        if file == nil {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            file = OpenFile(fd)
        }
        let fd = file!.fd
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        fileBytes = Int(st.st_size)
        guard fileBytes > offset else { return true }
        var bytes = [UInt8](repeating: 0, count: fileBytes - offset)
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(offset + got)) }
            if n <= 0 { break }
            got += n
        }
        bytes.removeSubrange(got...)
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            if offset == 0 {
                guard raw.count >= LogSegment.headerSize else { stopped = "shorter than the segment header"; return }
                guard Array(raw[0..<4]) == LogSegment.magic else { stopped = "not a HostTwin log segment (bad magic)"; return }
                r = ByteReader(raw, at: 4)
                let v = try r.u32()
                guard v == LogSegment.version else { stopped = "unsupported log version \(v)"; return }
                _ = try r.u64()
                offset = LogSegment.headerSize
            }
            stopped = nil
            while r.remaining > 0 {
                guard r.remaining >= 8 else { stopped = "torn record header"; break }
                let len = Int(try r.u32())
                let crc = try r.u32()
                guard len <= LogSegment.maxRecord, r.remaining >= len else { stopped = "torn record"; break }
                let payload = try r.take(len)
                guard Zlib.crc32(payload) == crc else { stopped = "checksum mismatch"; break }
                var next = decoder
                var added: [(Int64, Int64, Double)] = []
                do { try next.decode(payload) { id, t, v in added.append((id, t, v)) } } catch is ChunkError {
                    stopped = "undecodable record"
                    break
                }
                decoder = next
                for (id, t, v) in added {
                    byID[id, default: []].append((t, v))
                    if newest == nil || t > newest! { newest = t }
                    if oldest == nil || t < oldest! { oldest = t }
                }
                samples += added.count
                offset += 8 + len
            }
        }
        return true
    }
}

/// A file descriptor closed when the last copy of its owner goes.
final class OpenFile: Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}
