import Foundation
import Synchronization
import TwinCore

/// The head's durability log: numbered segment files in `DIR/wal/`, one per head window. Each tick (or
/// pushed batch) is one record, written with one `write(2)`, so a `kill -9` leaves either the whole record
/// or none of it; a torn tail after a power loss fails its CRC and is cut off at recovery.
///
/// ```
/// segment = "HTWL" · u32 version (1) · u64 sequence · record*
/// record  = u32 payload length · u32 crc32(payload) · payload
/// payload = u8 type · …   (see ``TickRecordEncoder``)
/// ```
/// Records are encoded against the previous ones of the same segment (time deltas, the previous tick's
/// series list, each series' previous value), so a segment is read from its start.
enum LogSegment {
    static let magic: [UInt8] = Array("HTWL".utf8)
    static let version: UInt32 = 1
    static let headerSize = 16
    /// A record larger than this is treated as damage, not allocated.
    static let maxRecord = 256 << 20

    static func directory(_ dataDir: String) -> String { dataDir + "/wal" }

    static func path(_ dataDir: String, _ seq: UInt64) -> String {
        directory(dataDir) + "/" + String(format: "%016llx.log", seq)
    }

    /// The segments in `dataDir`, by sequence number. Every query lists them (readdir, not FileManager:
    /// this is on the query path).
    static func list(_ dataDir: String) -> [(seq: UInt64, path: String)] {
        let dir = directory(dataDir)
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var out: [(seq: UInt64, path: String)] = []
        while let entry = readdir(handle) {
            let name = entry.entryName
            guard name.hasSuffix(".log"), let seq = UInt64(name.dropLast(4), radix: 16) else { continue }
            out.append((seq, dir + "/" + name))
        }
        return out.sorted { $0.seq < $1.seq }
    }

    /// ``list(_:)`` for a reader that lists the same directory query after query: the listing is kept
    /// while the directory's modification time stays what it was (one `stat` instead of `opendir`,
    /// `getdents` and `close`). A listing is kept only when that time was already behind the coarse
    /// clock the file system stamps with, so a change after the listing cannot carry the same time.
    final class Listing: Sendable {
        private let dataDir: String
        private let kept = Mutex<(mtime: timespec, segments: [(seq: UInt64, path: String)])?>(nil)

        init(dataDir: String) { self.dataDir = dataDir }

        func segments() -> [(seq: UInt64, path: String)] {
            var st = stat()
            guard stat(directory(dataDir), &st) == 0 else { return list(dataDir) }
            let mtime = st.st_mtim
            if let k = kept.withLock({ $0 }), k.mtime.tv_sec == mtime.tv_sec, k.mtime.tv_nsec == mtime.tv_nsec { return k.segments }
            var now = timespec()
            clock_gettime(CLOCK_REALTIME_COARSE, &now)
            let segments = list(dataDir)
            let settled = mtime.tv_sec < now.tv_sec || (mtime.tv_sec == now.tv_sec && mtime.tv_nsec < now.tv_nsec)
            kept.withLock { $0 = settled ? (mtime, segments) : nil }
            return segments
        }
    }

    static func header(_ seq: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: headerSize)
        w.append(magic)
        w.u32(version)
        w.u64(seq)
        return w.bytes
    }

    /// What reading a segment found.
    struct Scan {
        /// Bytes of whole, valid records (and the header): where a writer may continue or truncate.
        var validBytes: Int
        var records: Int
        var samples: Int
        /// The time of each tick record, in order (a tick is a record even without samples).
        var ticks: [Int64] = []
        /// Why reading stopped before the end of the file, if it did.
        var damage: String?
        var fileBytes: Int
    }

    /// Reads every sample of the segment at `path` in record order, calling `body(id, t, v)`. Stops at
    /// the first damaged record and says why in ``Scan/damage``; throws only when the file cannot be read.
    static func scan(_ path: String, _ body: (Int64, Int64, Double) throws -> Void) throws -> Scan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TwinError.unavailable("cannot read log segment \(path)")
        }
        return try data.withUnsafeBytes { raw in
            var scan = Scan(validBytes: 0, records: 0, samples: 0, damage: nil, fileBytes: raw.count)
            guard raw.count >= headerSize, Array(raw[0..<4]) == magic else {
                scan.damage = raw.count < headerSize ? "shorter than the segment header" : "not a HostTwin log segment (bad magic)"
                return scan
            }
            var r = ByteReader(raw, at: 4)
            let v = try r.u32()
            guard v == version else { scan.damage = "unsupported log version \(v)"; return scan }
            _ = try r.u64()
            scan.validBytes = headerSize
            var decoder = TickRecordDecoder()
            while r.remaining > 0 {
                guard r.remaining >= 8 else { scan.damage = "torn record header at byte \(r.pos)"; break }
                let len = Int(try r.u32())
                let crc = try r.u32()
                guard len <= maxRecord, r.remaining >= len else { scan.damage = "torn record at byte \(r.pos - 8) (\(len) bytes announced, \(r.remaining) present)"; break }
                let payload = try r.take(len)
                guard Zlib.crc32(payload) == crc else { scan.damage = "checksum mismatch in the record at byte \(r.pos - len - 8)"; break }
                var n = 0
                do { try decoder.decode(payload) { id, t, v in n += 1; try body(id, t, v) } } catch let e as ChunkError {
                    scan.damage = "undecodable record at byte \(r.pos - len - 8): \(e)"
                    break
                }
                scan.records += 1
                scan.samples += n
                if payload[0] == 1 { scan.ticks.append(decoder.lastTickTime) }
                scan.validBytes = r.pos
            }
            return scan
        }
    }
}

/// A log segment the writer has moved past, still open. The sealer flushes and closes it before it seals
/// the segment's window, so that the writer's thread — the collection thread in `run` — never waits for a
/// disk's `fdatasync` (under heavy writeback one can take seconds). Its data is in the page cache from the
/// first write: a kill -9 loses nothing; a flush that fails only weakens the power-loss guarantee.
final class FinishedSegment: Sendable {
    private let fd: Mutex<Int32>

    init(fd: Int32) { self.fd = Mutex(fd) }

    deinit { flushAndClose() }

    /// Flushes the segment to disk and closes it; later calls do nothing.
    func flushAndClose() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            _ = fdatasync(fd)
            close(fd)
            fd = -1
        }
    }
}

/// Appends records to the current segment. Not thread-safe: owned by the writer.
final class LogWriter {
    let dataDir: String
    private(set) var seq: UInt64 = 0
    private var fd: Int32 = -1
    private var size = 0
    private var encoder = TickRecordEncoder()
    private var frame = ByteWriter(capacity: 8192)

    init(dataDir: String) { self.dataDir = dataDir }

    deinit { if fd >= 0 { close(fd) } }

    var path: String { LogSegment.path(dataDir, seq) }

    /// Starts segment `seq` and hands back the current one, still open, for the sealer to flush and close
    /// (nil when there was none). When the new segment cannot be created (disk full), the current one stays
    /// open and unchanged, so appends go on there.
    func start(seq: UInt64) throws -> FinishedSegment? {
        try FileManager.default.createDirectory(atPath: LogSegment.directory(dataDir), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let p = LogSegment.path(dataDir, seq)
        let f = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard f >= 0 else { throw Self.ioError("create", p) }
        let header = LogSegment.header(seq)
        let n = header.withUnsafeBytes { write(f, $0.baseAddress, $0.count) }
        guard n == header.count else {
            let error = Self.ioError("write", p)
            close(f)
            unlink(p)
            throw error
        }
        let finished = fd >= 0 ? FinishedSegment(fd: fd) : nil
        fd = f
        self.seq = seq
        size = header.count
        encoder = TickRecordEncoder()
        return finished
    }

    /// Flushes the segment to disk and closes it.
    func closeSegment() throws {
        guard fd >= 0 else { return }
        defer { close(fd); fd = -1 }
        guard fdatasync(fd) == 0 else { throw Self.ioError("flush", path) }
    }

    /// Appends one tick. On failure (disk full) the segment is left exactly as before the call.
    func appendTick(_ t: Int64, ids: [Int64], values: [Double]) throws {
        var body = encoder.tickRecord(t, ids: ids, values: values)
        try frameAndWrite(&body)
        encoder.commitPending()
    }

    /// Appends a batch of samples `(id, t, v)`.
    func appendBatch(_ samples: [(Int64, Int64, Double)]) throws {
        var body = encoder.batch(samples)
        try frameAndWrite(&body)
        encoder.commitPending()
    }

    private func frameAndWrite(_ body: inout ByteWriter) throws {
        guard fd >= 0 else { throw TwinError.unavailable("log segment is not open") }
        frame.bytes.removeAll(keepingCapacity: true)
        frame.u32(UInt32(body.bytes.count))
        frame.u32(Zlib.crc32(body.bytes))
        frame.append(body.bytes)
        do { try writeAll(frame.bytes) } catch {
            encoder.discardPending()
            _ = ftruncate(fd, off_t(size))
            _ = lseek(fd, off_t(size), SEEK_SET)
            throw error
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.ioError("write", path)
                }
                done += n
            }
        }
        size += done
    }

    static func ioError(_ op: String, _ path: String) -> TwinError {
        .unavailable("cannot \(op) \(path): \(String(cString: strerror(errno)))")
    }
}
