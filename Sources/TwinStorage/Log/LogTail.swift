#if canImport(Glibc)
import Glibc
#endif

/// What a reader has decoded of one unsealed head-log segment (a file in `wal/`, or one hub's rows of
/// `head_log` with one segment number), kept between reads: segments only grow (one whole record at a
/// time) until sealed, so each read decodes just the records appended since the last one. A long-lived
/// reader (the server) then pays per query for filtering, not for decoding the head window again.
struct LogTail: Sendable {
    /// The segment file, open from the first read on: each later read costs one `fstat` (and a `pread`
    /// when it grew), not an `open` and a `close`. A segment sealed and unlinked meanwhile stays readable
    /// through it, and whole: the writer seals only what it finished writing. Nil for a table's segment.
    private var file: OpenFile?
    private var decoder = TickRecordDecoder()
    /// Bytes consumed: the header and whole, valid records.
    private(set) var offset = 0
    /// Records decoded (a table's next record number).
    private(set) var records = 0
    /// Samples by series id, in time order per series: of the series in `keep` only (all when nil).
    private(set) var byID: [Int64: [(Int64, Double)]] = [:]
    /// The series whose samples are kept (all when nil); the counts and times cover every series.
    let keep: Set<Int64>?
    private(set) var samples = 0
    private(set) var newest: Int64?
    private(set) var oldest: Int64?
    /// The times of the tick records, in order (a tick is a record even without samples).
    private(set) var ticks: [Int64] = []
    /// Why decoding stopped before the end (a record still being written, or damage).
    private(set) var stopped: String?
    /// The bytes of the segment: the file's size, or the table rows' data.
    private(set) var bytes = 0
    /// Why a record could not be decoded: set once, it stops decoding for good.
    private var damage: String?
    /// The samples of the record being decoded (kept for their capacity).
    private var scratch: [(Int64, Int64, Double)] = []

    init(keep: Set<Int64>? = nil) { self.keep = keep }

    /// Decodes what was appended to the file at `path` since the last call. False when the file is gone
    /// before its first read (sealed and deleted meanwhile); once open it stays readable.
    mutating func advance(_ path: String) throws -> Bool {
        if file == nil {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            file = OpenFile(fd)
        }
        let fd = file!.fd
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        bytes = Int(st.st_size)
        guard bytes > offset else { return true }
        var data = [UInt8](repeating: 0, count: bytes - offset)
        var got = 0
        while got < data.count {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(offset + got)) }
            if n <= 0 { break }
            got += n
        }
        data.removeSubrange(got...)
        try data.withUnsafeBytes { raw in
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
                guard consume(payload) else { break }
                offset += 8 + len
            }
        }
        return true
    }

    /// Decodes the next record of a table's segment (record number ``records``); false when it cannot be
    /// decoded (the segment's later records then cannot be either: they are encoded against it).
    mutating func append(record payload: [UInt8]) -> Bool {
        guard stopped == nil else { return false }
        bytes += payload.count
        return payload.withUnsafeBytes { consume($0) }
    }

    /// Decodes one record's payload into the samples kept; false (and ``stopped`` says why) when it is
    /// damaged, leaving the samples as they were. The decoder is changed in place (a copy to fall back on
    /// would copy its last values of every series at every record), so after a damaged record it no longer
    /// follows the segment and nothing after it is decoded.
    private mutating func consume(_ payload: UnsafeRawBufferPointer) -> Bool {
        guard damage == nil else { stopped = damage; return false }
        var added = scratch
        scratch = []
        defer { added.removeAll(keepingCapacity: true); scratch = added }
        do { try decoder.decode(payload) { id, t, v in added.append((id, t, v)) } } catch {
            damage = "undecodable record \(records): \(error)"
            stopped = damage
            return false
        }
        for (id, t, v) in added {
            if keep?.contains(id) ?? true { byID[id, default: []].append((t, v)) }
            if newest == nil || t > newest! { newest = t }
            if oldest == nil || t < oldest! { oldest = t }
        }
        if payload.first == 1 { ticks.append(decoder.lastTickTime) }
        samples += added.count
        records += 1
        return true
    }
}

/// A file descriptor closed when the last copy of its owner goes.
final class OpenFile: Sendable {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { close(fd) }
}
