/// Many series' blobs in one stored row: the chunks of a head window or an hour, or the rollup blocks
/// of a day, of up to ``size`` series with consecutive ids (a *group*). One row per group instead of one
/// per series is what makes a short-lived series cheap: its chunk costs a directory entry, not a row
/// and three index entries; and the row's data is deflated as a whole, so what the members have in
/// common (a process's five series, rollup points of one shape) is stored once
/// (docs/format/chunks.md, "Group rows").
///
/// ```
/// members = u8 version (1) · u8 flags (bit 0: data deflated) · uvarint raw data length · u32 crc32 of the
///           raw data · uvarint n · n × (uvarint id − previous id, uvarint count, uvarint length)
///           · u32 crc32 of the directory
/// data    = the members (ChunkCodec members: neither deflated nor checksummed on their own),
///           concatenated in directory order — deflated when that is smaller
/// ```
///
/// One checksum covers the row's data: damage anywhere in it costs the row (`hosttwin repair` moves it
/// to the quarantine table), which holds one window, hour or day of at most 64 series.
///
/// The directory is its own column, stored before `data`, so SQLite reads it without the blobs.
public enum GroupBlock {
    /// Series per group: ids `[g·size, (g+1)·size)` share rows.
    public static let size: Int64 = 64
    /// The most bytes a row's data may inflate to (a bound for untrusted directories).
    static let maxRawLength = 1 << 28

    /// The group of series `id`.
    @inline(__always)
    public static func group(of id: Int64) -> Int64 { id >> 6 }

    /// One series' part of a row: its id, how many samples (or points) its blob holds, and where the
    /// blob lies in the row's (inflated) data.
    public struct Member: Equatable, Sendable {
        public var id: Int64
        public var count: Int
        public var range: Range<Int>
    }

    /// A row's directory: its members, sorted by id, and how its data is stored.
    public struct Directory: Equatable, Sendable {
        public var members: [Member]
        public var deflated: Bool
        public var rawLength: Int
        /// The CRC-32 of the raw data.
        public var dataCRC: UInt32

        /// The member of series `id` (binary search).
        public func find(_ id: Int64) -> Member? {
            var lo = 0, hi = members.count
            while lo < hi {
                let m = (lo + hi) / 2
                if members[m].id < id { lo = m + 1 } else { hi = m }
            }
            return lo < members.count && members[lo].id == id ? members[lo] : nil
        }
    }

    /// Encodes blobs (ids strictly increasing, all of one group) as a directory and the stored data.
    static func encode(_ members: [(id: Int64, count: Int, blob: [UInt8])]) -> (directory: [UInt8], data: [UInt8]) {
        var raw: [UInt8] = []
        raw.reserveCapacity(members.reduce(0) { $0 + $1.blob.count })
        for m in members { raw += m.blob }
        let z = raw.count > 64 ? Zlib.deflate(raw) : nil
        let deflated = z.map { $0.count < raw.count } ?? false
        var dir = ByteWriter(capacity: 12 + members.count * 5)
        dir.u8(1)
        dir.u8(deflated ? 1 : 0)
        dir.uvarint(UInt64(raw.count))
        dir.u32(Zlib.crc32(raw))
        dir.uvarint(UInt64(members.count))
        var previous: Int64 = 0
        for (i, m) in members.enumerated() {
            precondition(i == 0 || m.id > previous, "group members out of order")
            dir.uvarint(UInt64(m.id - previous))
            dir.uvarint(UInt64(m.count))
            dir.uvarint(UInt64(m.blob.count))
            previous = m.id
        }
        dir.u32(Zlib.crc32(dir.bytes))
        return (dir.bytes, deflated ? z! : raw)
    }

    /// Reads a directory, checking its CRC and that its members tile its data.
    public static func directory(_ bytes: [UInt8]) throws -> Directory {
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(try ChunkCodec.checked(raw, minimum: 8, "group directory checksum mismatch"))
            let version = try r.u8()
            guard version == 1 else { throw ChunkError.corrupt("unknown group directory version \(version)") }
            let flags = try r.u8()
            guard flags <= 1 else { throw ChunkError.corrupt("unknown group directory flags \(flags)") }
            let rawLength = try r.count(limit: maxRawLength)
            let dataCRC = try r.u32()
            let n = try r.count(limit: Int(size))
            var out: [Member] = []
            out.reserveCapacity(n)
            var id: Int64 = 0, offset = 0
            for i in 0..<n {
                let delta = try r.uvarint()
                guard delta < UInt64(Int64.max) - UInt64(id), i == 0 || delta > 0 else { throw ChunkError.corrupt("group member ids out of order") }
                id += Int64(delta)
                let count = try r.count(limit: ChunkCodec.maxCount)
                let length = try r.count(limit: rawLength - offset)
                out.append(Member(id: id, count: count, range: offset..<offset + length))
                offset += length
            }
            guard r.remaining == 0, offset == rawLength else { throw ChunkError.corrupt("group directory does not cover its data (\(offset) of \(rawLength) bytes)") }
            guard let first = out.first, let last = out.last, group(of: first.id) == group(of: last.id) else {
                throw ChunkError.corrupt(out.isEmpty ? "empty group row" : "group row spans two groups")
            }
            return Directory(members: out, deflated: flags == 1, rawLength: rawLength, dataCRC: dataCRC)
        }
    }

    /// A row's data as its members' ranges address it: `stored` inflated when the directory says so,
    /// its checksum checked.
    public static func rawData(_ stored: [UInt8], _ d: Directory) throws -> [UInt8] {
        let raw = d.deflated ? try stored.withUnsafeBytes { try Zlib.inflate($0, rawCount: d.rawLength) } : stored
        guard raw.count == d.rawLength else { throw ChunkError.corrupt("group data is \(raw.count) bytes where the directory says \(d.rawLength)") }
        guard Zlib.crc32(raw) == d.dataCRC else { throw ChunkError.corrupt("group data checksum mismatch") }
        return raw
    }
}
