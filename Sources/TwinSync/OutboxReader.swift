import TwinCore
import TwinStorage

/// Reads a hub's outbox for one session of a reader — an upstream hub it relays to, or a follower — as
/// the batches to send, in the order the hub applied them, with their origin positions unchanged.
///
/// Rows the reader holds already are skipped, and so are rows of a host's older epoch once the reader
/// holds a newer one. A host's first batch in a session is sent standing alone (rebuilt from the host's
/// last standalone row when the row is chained), so the reader never needs a base it lacks; the rows
/// after it are sent as they are, chained on it.
public struct OutboxReader {
    public let store: TwinStore
    /// What the reader holds: host → its epoch and last tick.
    public private(set) var held: [String: (epoch: UInt64, through: UInt64)]
    /// The last outbox id read.
    public private(set) var position: Int64
    /// Hosts whose chain this session has begun.
    private var started = Set<String>()
    /// Per host, the id of its newest row of the epoch the reader holds (older epochs before it are stale).
    private var heldEpochRow: [String: Int64] = [:]

    /// A batch to send, and where it stands in the outbox.
    public struct Item: Sendable {
        public var id: Int64
        public var host: String
        public var range: ClosedRange<UInt64>
        public var bytes: [UInt8]
        /// When this hub applied it (ms).
        public var appliedAt: Int64
    }

    /// A session reading `store`'s outbox after `position` for a reader that holds `held`.
    public init(store: TwinStore, held: [String: (epoch: UInt64, through: UInt64)], after position: Int64 = 0) throws {
        self.store = store
        self.held = held
        self.position = position
        for (host, h) in held { heldEpochRow[host] = try store.outboxLatest(host: host, epoch: h.epoch) }
    }

    /// Up to `limit` rows' batches after the position (fewer, or none, at the outbox's end). Rows skipped
    /// count against `limit` too, so a call returns promptly.
    public mutating func next(limit: Int = 256) throws -> [Item] {
        var out: [Item] = []
        for row in try store.outbox(after: position, limit: limit) {
            position = row.id
            if let h = held[row.host] {
                if row.epoch == h.epoch, row.lastSeq <= h.through { continue }
                if row.epoch != h.epoch, let newest = heldEpochRow[row.host], row.id < newest { continue }
            }
            var bytes = row.batch
            if !started.contains(row.host), !row.standalone { bytes = try rebuilt(row) ?? row.batch }
            started.insert(row.host)
            held[row.host] = (row.epoch, row.lastSeq)
            out.append(Item(id: row.id, host: row.host, range: row.firstSeq...row.lastSeq, bytes: bytes, appliedAt: row.appliedAt))
        }
        return out
    }

    /// A chained row's batch standing alone, decoded from the host's last standalone row on; nil when the
    /// outbox no longer holds that row (the reader is then sent the row as it is, and says `need_base`).
    func rebuilt(_ row: OutboxRow) throws -> [UInt8]? {
        let chain = try store.outboxChain(host: row.host, epoch: row.epoch, through: row.id)
        guard let first = chain.first, first.standalone, chain.last?.id == row.id else { return nil }
        var definitions: [Int64: SeriesDefinition] = [:]
        var decoder: TickRecordDecoder?
        var last: (seq: UInt64, batch: SyncBatch)?
        for r in chain {
            let base = try SyncCodec.header(r.batch).baseSeq
            let decoded: (batch: SyncBatch, state: TickRecordDecoder)
            if let base {
                guard let d = decoder, last?.seq == base else { return nil }
                decoded = try SyncCodec.decode(r.batch, base: (base, d))
            } else {
                decoded = try SyncCodec.decode(r.batch)
            }
            for d in decoded.batch.dictionary { definitions[d.ref] = d }
            decoder = decoded.state
            last = (r.lastSeq, decoded.batch)
        }
        guard let batch = last?.batch else { return nil }
        return try SyncCodec.encode(try HubIngest.standingAlone(batch, definitions: definitions)).bytes
    }
}
