import CZlib
import CZstd
import TwinCore
import TwinStorage

/// Where a change sits in an agent's history: the host, the store's epoch (a random id made with the
/// store, so a wiped or replaced store never reuses positions) and the sequence number of the committed
/// tick, counted from 1 without gaps within the epoch.
public struct SyncPosition: Hashable, Sendable, Codable, CustomStringConvertible {
    public var host: String
    public var epoch: UInt64
    public var seq: UInt64

    public init(host: String, epoch: UInt64, seq: UInt64) {
        self.host = host
        self.epoch = epoch
        self.seq = seq
    }

    public var description: String { "\(host)/\(String(epoch, radix: 16))/\(seq)" }
}

/// A series as the agent names it: the agent store's series id (`ref`), valid for the epoch.
public struct SeriesDefinition: Hashable, Sendable {
    public var ref: Int64
    public var key: SeriesKey
    public var type: MetricType

    public init(ref: Int64, key: SeriesKey, type: MetricType) {
        self.ref = ref
        self.key = key
        self.type = type
    }
}

/// One committed tick of an agent's store: its samples and its state changes.
public struct TickChange: Hashable, Sendable {
    public var seq: UInt64
    public var time: Int64
    /// Series refs and values, in the order the agent stored them.
    public var refs: [Int64]
    public var values: [Double]
    /// Versions the tick opened (`validFrom == time`, open) and entities whose open version it closed.
    public var opened: [Entity]
    public var closed: [EntityRef]
    /// The agent thinned this tick's raw samples to its rollups (disk cap): it has none to send, and the
    /// receiver records the gap.
    public var thinned = false

    public init(seq: UInt64, time: Int64, refs: [Int64] = [], values: [Double] = [], opened: [Entity] = [], closed: [EntityRef] = [], thinned: Bool = false) {
        self.seq = seq
        self.time = time
        self.refs = refs
        self.values = values
        self.opened = opened
        self.closed = closed
        self.thinned = thinned
    }

    public static func == (a: TickChange, b: TickChange) -> Bool {
        a.seq == b.seq && a.time == b.time && a.refs == b.refs && a.opened == b.opened && a.closed == b.closed && a.thinned == b.thinned
            && a.values.map(\.bitPattern) == b.values.map(\.bitPattern) // NaN equals NaN, -0 differs from 0
    }

    public func hash(into h: inout Hasher) {
        h.combine(seq)
        h.combine(time)
        h.combine(refs)
        h.combine(values.map(\.bitPattern))
    }
}

/// An entity by kind and key.
public struct EntityRef: Hashable, Sendable {
    public var kind: EntityKind
    public var key: String

    public init(kind: EntityKind, key: String) {
        self.kind = kind
        self.key = key
    }
}

/// A run of consecutive ticks of one host's epoch: what the agent pushes and the hub applies as one unit.
///
/// The encoding is a function of the batch and its base alone, so a batch sent again is byte-identical
/// (docs/format/sync.md). It is canonical: the dictionary comes back ordered by ref, each tick's opened
/// entities and closed refs by kind and key.
public struct SyncBatch: Hashable, Sendable {
    public var host: String
    public var epoch: UInt64
    /// The sequence number of the tick the first tick record is encoded against (`ticks[0].seq − 1`);
    /// nil when the batch stands alone. A receiver decodes a batch with a base only from the decoder
    /// state right after that tick.
    public var baseSeq: UInt64?
    /// Series whose first tick of the epoch is in this batch.
    public var dictionary: [SeriesDefinition]
    /// Consecutive ticks, oldest first.
    public var ticks: [TickChange]

    public init(host: String, epoch: UInt64, baseSeq: UInt64? = nil, dictionary: [SeriesDefinition] = [], ticks: [TickChange]) {
        self.host = host
        self.epoch = epoch
        self.baseSeq = baseSeq
        self.dictionary = dictionary
        self.ticks = ticks
    }

    /// The first and last sequence numbers; nil for an empty batch.
    public var range: ClosedRange<UInt64>? { ticks.first.map { $0.seq...ticks[ticks.count - 1].seq } }

    public var sampleCount: Int { ticks.reduce(0) { $0 + $1.refs.count } }
}

/// Why a batch cannot be encoded or applied as it stands.
public enum SyncError: Error, Equatable, CustomStringConvertible {
    /// The bytes are not a batch of this protocol (damage, truncation, wrong checksum).
    case malformed(String)
    /// A protocol version this side does not speak.
    case unsupportedVersion(UInt8)
    /// The batch is encoded against a tick the receiver's decoder is not at.
    case baseMismatch(expected: UInt64?, have: UInt64?)
    /// The batch itself breaks a rule (gaps between ticks, ticks out of order).
    case invalid(String)

    public var description: String {
        switch self {
        case .malformed(let m): "malformed batch: \(m)"
        case .unsupportedVersion(let v): "batch of protocol version \(v); this side speaks versions \(SyncCodec.readable.lowerBound)–\(SyncCodec.readable.upperBound)"
        case .baseMismatch(let e, let h): "batch encoded against tick \(e.map(String.init) ?? "none"), receiver is at \(h.map(String.init) ?? "none")"
        case .invalid(let m): "invalid batch: \(m)"
        }
    }
}

/// The wire encoding of ``SyncBatch`` (docs/format/sync.md):
///
/// ```
/// batch   = u8 version (2; 1 is read) · u8 compression (0 none, 1 zstd) · string host · u64 epoch · uvarint first seq
///           · uvarint tick count · uvarint (base seq + 1, or 0) · uvarint payload size · payload (compressed)
///           · u32 crc32 of everything before
/// payload = uvarint n · n × (varint Δref · u8 type · string metric · string labels)      the dictionary
///           · per tick: varint Δt (the first from 0) · uvarint |record| · tick record (TickRecord format, ids = refs)
///           · uvarint |opened| · version block (VersionCodec; every opened version, validFrom = its tick)
///           · uvarint n · n × (varint Δt (the first from the first tick) · string kind · string key)   the closes
///           · [uvarint n ≥ 1 · n × (uvarint ticks since the previous run's end · uvarint length)]   thinned ticks, if any
/// string  = uvarint length · UTF-8
/// ```
public enum SyncCodec {
    /// The version this side writes. Version 2 carries version blocks of format 2 (docs/format/versions.md);
    /// the rest of the batch is as in version 1, which is still read (agents and relays not yet upgraded).
    public static let version: UInt8 = 2
    /// The versions this side reads.
    public static let readable: ClosedRange<UInt8> = 1...2
    /// Larger batches are refused before anything is allocated for them.
    public static let maxPayload = 64 << 20

    /// Encodes `batch`. `base` is the encoder state right after tick `batch.baseSeq` (nil when the batch
    /// stands alone); the state after the batch's last tick is returned, for a following batch.
    public static func encode(_ batch: SyncBatch, base: TickRecordEncoder? = nil, compress: Bool = true) throws -> (bytes: [UInt8], state: TickRecordEncoder) {
        guard (batch.baseSeq == nil) == (base == nil) else { throw SyncError.invalid("a base sequence number needs the encoder state after it, and only then") }
        try validate(batch)
        var p = ByteWriter(capacity: 64 + batch.sampleCount * 2)
        p.uvarint(UInt64(batch.dictionary.count))
        var lastRef: Int64 = 0
        for d in batch.dictionary.sorted(by: { $0.ref < $1.ref }) {
            p.varint(d.ref &- lastRef)
            lastRef = d.ref
            p.u8(d.type.code)
            p.string(d.key.metric)
            p.string(d.key.labels.text)
        }
        var encoder = base ?? TickRecordEncoder()
        // A base is its last tick alone: values of series that tick lacked are not carried over, so a
        // batch decodes from any state with that tick, also one rebuilt standing alone (a relay's).
        encoder.keepLastTickOnly()
        var lastT: Int64 = 0
        var opened: [EntityVersion] = []
        var closes: [(Int64, EntityRef)] = []
        for tick in batch.ticks {
            p.varint(tick.time &- lastT)
            lastT = tick.time
            let record = encoder.tick(tick.time, ids: tick.refs, values: tick.values)
            encoder.commitPending()
            p.uvarint(UInt64(record.count))
            p.append(record)
            opened += tick.opened.map { EntityVersion(kind: $0.kind, key: $0.key, attributes: $0.attributes, validFrom: tick.time, validTo: nil) }
            closes += tick.closed.sorted { ($0.kind.rawValue, $0.key) < ($1.kind.rawValue, $1.key) }.map { (tick.time, $0) }
        }
        let block = VersionCodec.encode(opened)
        p.uvarint(UInt64(block.count))
        p.append(block)
        p.uvarint(UInt64(closes.count))
        lastT = batch.ticks.first?.time ?? 0
        for (t, c) in closes {
            p.varint(t &- lastT)
            lastT = t
            p.string(c.kind.rawValue)
            p.string(c.key)
        }
        // Thinned ticks, as runs (offset from the end of the previous run, length): only when there are any,
        // so other batches keep the encoding they always had.
        var runs: [(start: Int, count: Int)] = []
        for (i, tick) in batch.ticks.enumerated() where tick.thinned {
            if let last = runs.last, last.start + last.count == i { runs[runs.count - 1].count += 1 } else { runs.append((i, 1)) }
        }
        if !runs.isEmpty {
            p.uvarint(UInt64(runs.count))
            var end = 0
            for r in runs {
                p.uvarint(UInt64(r.start - end))
                p.uvarint(UInt64(r.count))
                end = r.start + r.count
            }
        }

        let header = Header(host: batch.host, epoch: batch.epoch, firstSeq: batch.ticks.first?.seq ?? 0, tickCount: batch.ticks.count, baseSeq: batch.baseSeq)
        return (frame(header, payload: p.bytes, compress: compress), encoder)
    }

    /// The header, the payload (zstd when that is smaller) and the checksum.
    private static func frame(_ h: Header, payload: [UInt8], compress: Bool) -> [UInt8] {
        var out = ByteWriter(capacity: payload.count / 2 + 64)
        out.u8(version)
        let packed = compress ? zstd(payload) : nil
        out.u8(packed == nil ? 0 : 1)
        out.string(h.host)
        out.u64(h.epoch)
        out.uvarint(h.firstSeq)
        out.uvarint(UInt64(h.tickCount))
        out.uvarint(h.baseSeq.map { $0 + 1 } ?? 0)
        out.uvarint(UInt64(payload.count))
        out.append(packed ?? payload)
        out.u32(crc32(out.bytes))
        return out.bytes
    }

    /// `bytes` with its state changes rewritten by `transform` (given each tick's opened entities and
    /// closed refs, in batch order) and everything else — header, dictionary, tick records, thinned runs —
    /// as it was, so a chained batch still decodes from its base. A relay applies a destination's data
    /// policy this way; the same input gives the same bytes.
    public static func rewritingState(_ bytes: [UInt8], _ transform: (_ opened: inout [Entity], _ closed: inout [EntityRef]) throws -> Void) throws -> [UInt8] {
        let (h, payload) = try parse(bytes)
        do {
            return try payload.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                // Dictionary and tick records: skipped over, copied as they are.
                for _ in 0..<(try r.count(limit: r.remaining / 4)) {
                    _ = try r.varint()
                    _ = try r.u8()
                    _ = try r.string()
                    _ = try r.string()
                }
                for _ in 0..<h.tickCount {
                    _ = try r.varint()
                    _ = try r.take(try r.count(limit: r.remaining))
                }
                var p = ByteWriter(capacity: payload.count)
                p.append(Array(UnsafeRawBufferPointer(rebasing: raw[0..<r.pos])))
                let opened = try VersionCodec.decode(Array(try r.take(try r.count(limit: r.remaining))))
                var closes: [(delta: Int64, ref: EntityRef)] = [] // times as encoded: they do not change
                for _ in 0..<(try r.count(limit: r.remaining / 3)) {
                    let d = try r.varint()
                    guard let kind = EntityKind(rawValue: try r.string()) else { throw SyncError.malformed("unknown entity kind") }
                    closes.append((d, EntityRef(kind: kind, key: try r.string())))
                }
                let trailer = Array(try r.take(r.remaining))
                var entities = opened.map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) }
                var refs = closes.map(\.ref)
                try transform(&entities, &refs)
                guard entities.count == opened.count, refs.count == closes.count else { throw SyncError.invalid("a state rewrite may change entities, not add or remove them") }
                let block = VersionCodec.encode(zip(opened, entities).map { EntityVersion(kind: $1.kind, key: $1.key, attributes: $1.attributes, validFrom: $0.validFrom, validTo: nil) })
                p.uvarint(UInt64(block.count))
                p.append(block)
                p.uvarint(UInt64(closes.count))
                for (c, ref) in zip(closes, refs) {
                    p.varint(c.delta)
                    p.string(ref.kind.rawValue)
                    p.string(ref.key)
                }
                p.append(trailer)
                return frame(h, payload: p.bytes, compress: true)
            }
        } catch let e as SyncError { throw e } catch { throw SyncError.malformed("\(error)") }
    }

    /// What a batch says about itself, read without decoding its payload (to route it or see whether
    /// it was applied already).
    public struct Header: Hashable, Sendable {
        public var host: String
        public var epoch: UInt64
        public var firstSeq: UInt64
        public var tickCount: Int
        public var baseSeq: UInt64?
        public var range: ClosedRange<UInt64>? { tickCount == 0 ? nil : firstSeq...(firstSeq + UInt64(tickCount) - 1) }
    }

    /// Checks the checksum and reads the header.
    public static func header(_ bytes: [UInt8]) throws -> Header {
        try parse(bytes).header
    }

    /// Decodes a batch. `base` is the decoder state right after tick `baseSeq` when the batch has a base
    /// (``SyncError/baseMismatch(expected:have:)`` otherwise); the state after its last tick is returned.
    public static func decode(_ bytes: [UInt8], base: (seq: UInt64, state: TickRecordDecoder)? = nil) throws -> (batch: SyncBatch, state: TickRecordDecoder) {
        let (h, payload) = try parse(bytes)
        if let want = h.baseSeq, base?.seq != want { throw SyncError.baseMismatch(expected: want, have: base?.seq) }
        var decoder = h.baseSeq == nil ? TickRecordDecoder() : base!.state
        decoder.keepLastTickOnly()
        do {
            return try payload.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                var batch = SyncBatch(host: h.host, epoch: h.epoch, baseSeq: h.baseSeq, ticks: [])
                let n = try r.count(limit: r.remaining / 4)
                var ref: Int64 = 0
                for _ in 0..<n {
                    ref = ref &+ (try r.varint())
                    guard let type = MetricType(code: try r.u8()) else { throw SyncError.malformed("unknown metric type") }
                    let metric = try r.string()
                    let labels = try r.string()
                    let key: SeriesKey
                    do { key = labels.isEmpty ? SeriesKey(metric) : try SeriesKey.parse(metric + labels) } catch {
                        throw SyncError.malformed("series \(ref): \(error)")
                    }
                    batch.dictionary.append(SeriesDefinition(ref: ref, key: key, type: type))
                }
                var t: Int64 = 0
                var index: [Int64: Int] = [:]
                for i in 0..<h.tickCount {
                    t = t &+ (try r.varint())
                    var tick = TickChange(seq: h.firstSeq + UInt64(i), time: t)
                    let record = try r.take(try r.count(limit: r.remaining))
                    try decoder.decode(record) { id, at, v in
                        guard at == t else { throw SyncError.malformed("tick record at \(at) inside the tick at \(t)") }
                        tick.refs.append(id)
                        tick.values.append(v)
                    }
                    index[t] = i
                    batch.ticks.append(tick)
                }
                let block = Array(try r.take(try r.count(limit: r.remaining)))
                for v in try VersionCodec.decode(block) {
                    guard let i = index[v.validFrom], v.validTo == nil else { throw SyncError.malformed("opened version at \(v.validFrom) matches no tick of the batch") }
                    batch.ticks[i].opened.append(Entity(kind: v.kind, key: v.key, attributes: v.attributes))
                }
                let closes = try r.count(limit: r.remaining / 3)
                var ct = batch.ticks.first?.time ?? 0
                for _ in 0..<closes {
                    ct = ct &+ (try r.varint())
                    guard let kind = EntityKind(rawValue: try r.string()) else { throw SyncError.malformed("unknown entity kind") }
                    let key = try r.string()
                    guard let i = index[ct] else { throw SyncError.malformed("closed version at \(ct) matches no tick of the batch") }
                    batch.ticks[i].closed.append(EntityRef(kind: kind, key: key))
                }
                if r.remaining > 0 {
                    let runs = try r.count(limit: h.tickCount)
                    guard runs > 0 else { throw SyncError.malformed("an empty list of thinned runs") }
                    var end = 0
                    for _ in 0..<runs {
                        let start = end + (try r.count(limit: h.tickCount - end))
                        let count = try r.count(limit: h.tickCount - start)
                        guard count > 0 else { throw SyncError.malformed("an empty run of thinned ticks") }
                        for i in start..<(start + count) {
                            guard batch.ticks[i].refs.isEmpty else { throw SyncError.malformed("thinned tick \(batch.ticks[i].seq) carries samples") }
                            batch.ticks[i].thinned = true
                        }
                        end = start + count
                    }
                }
                guard r.remaining == 0 else { throw SyncError.malformed("\(r.remaining) bytes after the payload") }
                try validate(batch)
                return (batch, decoder)
            }
        } catch let e as SyncError { throw e } catch { throw SyncError.malformed("\(error)") }
    }

    private static func parse(_ bytes: [UInt8]) throws -> (header: Header, payload: [UInt8]) {
        do {
            return try bytes.withUnsafeBytes { all in
                guard all.count >= 8 else { throw SyncError.malformed("\(all.count) bytes") }
                let body = UnsafeRawBufferPointer(rebasing: all[0..<all.count - 4])
                var tail = ByteReader(all, at: all.count - 4)
                guard try tail.u32() == crc32(Array(body)) else { throw SyncError.malformed("checksum mismatch") }
                var r = ByteReader(body)
                let v = try r.u8()
                guard readable.contains(v) else { throw SyncError.unsupportedVersion(v) }
                let compression = try r.u8()
                let host = try r.string()
                let epoch = try r.u64()
                let first = try r.uvarint()
                let count = try r.count(limit: 1 << 24)
                let base = try r.uvarint()
                guard count > 0 || base == 0 else { throw SyncError.malformed("an empty batch with a base") }
                guard base == 0 || base == first else { throw SyncError.malformed("base \(base - 1) is not the tick before \(first)") }
                guard first <= UInt64.max - UInt64(count) else { throw SyncError.malformed("sequence numbers overflow") }
                let size = try r.count(limit: maxPayload)
                let rest = Array(try r.take(r.remaining))
                let payload: [UInt8]
                switch compression {
                case 0:
                    guard rest.count == size else { throw SyncError.malformed("payload of \(rest.count) bytes, header says \(size)") }
                    payload = rest
                case 1: payload = try unzstd(rest, size: size)
                default: throw SyncError.malformed("unknown compression \(compression)")
                }
                return (Header(host: host, epoch: epoch, firstSeq: first, tickCount: count, baseSeq: base == 0 ? nil : base - 1), payload)
            }
        } catch let e as SyncError { throw e } catch { throw SyncError.malformed("\(error)") }
    }

    /// Ticks consecutive (seq + 1 each), in time order, samples and values paired.
    private static func validate(_ b: SyncBatch) throws {
        for (i, t) in b.ticks.enumerated() {
            guard t.refs.count == t.values.count else { throw SyncError.invalid("tick \(t.seq): \(t.refs.count) series, \(t.values.count) values") }
            guard !t.thinned || t.refs.isEmpty else { throw SyncError.invalid("thinned tick \(t.seq) carries samples") }
            guard i > 0 else {
                if let base = b.baseSeq, base &+ 1 != t.seq { throw SyncError.invalid("base \(base) is not the tick before \(t.seq)") }
                continue
            }
            let p = b.ticks[i - 1]
            guard t.seq == p.seq &+ 1 else { throw SyncError.invalid("tick \(t.seq) follows tick \(p.seq)") }
            guard t.time > p.time else { throw SyncError.invalid("tick \(t.seq) at \(t.time) is not after tick \(p.seq) at \(p.time)") }
        }
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(CZlib.crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count))) }
    }

    /// zstd level 3 (its default); nil when that is not smaller.
    static func zstd(_ input: [UInt8]) -> [UInt8]? { Zstd.compress(input, level: 3) }

    static func unzstd(_ input: [UInt8], size: Int) throws -> [UInt8] {
        do { return try input.withUnsafeBytes { try Zstd.decompress($0, rawCount: size) } } catch let e as ChunkError {
            throw SyncError.malformed(e.description)
        }
    }
}

extension ByteWriter {
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        uvarint(UInt64(utf8.count))
        append(utf8)
    }
}

extension ByteReader {
    mutating func string() throws -> String {
        String(decoding: try take(try count(limit: remaining)), as: UTF8.self)
    }
}

extension MetricType {
    /// The byte a batch's dictionary stores for the type.
    var code: UInt8 {
        switch self {
        case .gauge: 0
        case .counter: 1
        case .untyped: 2
        }
    }

    init?(code: UInt8) {
        switch code {
        case 0: self = .gauge
        case 1: self = .counter
        case 2: self = .untyped
        default: return nil
        }
    }
}
