import Foundation
import TwinCore

/// A batch a hub applied, as kept in its outbox for the hubs upstream (relay) and its followers
/// (observers): the encoded batch with its origin position (docs/format/sync.md, "Relay and observer").
public struct OutboxRow: Sendable, Equatable {
    /// The outbox's own order: the order the hub applied its batches in.
    public var id: Int64
    public var host: String
    public var epoch: UInt64
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// Whether the batch decodes alone (no base): a reader can start a host's chain there.
    public var standalone: Bool
    /// This hub's clock when it applied the batch.
    public var appliedAt: Int64
    public var batch: [UInt8]

    public init(id: Int64 = 0, host: String, epoch: UInt64, firstSeq: UInt64, lastSeq: UInt64, standalone: Bool, appliedAt: Int64, batch: [UInt8]) {
        (self.id, self.host, self.epoch, self.firstSeq, self.lastSeq) = (id, host, epoch, firstSeq, lastSeq)
        (self.standalone, self.appliedAt, self.batch) = (standalone, appliedAt, batch)
    }

    /// The columns ``init(_:)`` reads, in its order.
    static let columns = "id, host, epoch, first_seq, last_seq, standalone, applied_at, batch"

    init(_ row: SQLRow) throws {
        self.init(id: try row.integer(0), host: try row.text(1), epoch: UInt64(bitPattern: try row.integer(2)), firstSeq: UInt64(clamping: try row.integer(3)),
                  lastSeq: UInt64(clamping: try row.integer(4)), standalone: try row.bool(5), appliedAt: try row.integer(6),
                  batch: row[7].bytes ?? [])
    }
}

extension TwinStore {
    static func append(_ o: OutboxRow, _ db: any StoreStatements) throws {
        try db.execute("""
            INSERT INTO sync_outbox(host, epoch, first_seq, last_seq, standalone, applied_at, batch) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [o.host, Int64(bitPattern: o.epoch), Int64(o.firstSeq), Int64(o.lastSeq), o.standalone, o.appliedAt, o.batch])
    }

    /// Up to `limit` outbox rows after `id`, in order.
    public func outbox(after id: Int64, limit: Int) throws -> [OutboxRow] {
        try database.read { db in
            try db.rows("SELECT \(OutboxRow.columns) FROM sync_outbox WHERE id > ? ORDER BY id LIMIT ?", [id, limit]).map(OutboxRow.init)
        }
    }

    /// `host`'s outbox rows of `epoch` from its last standalone row at or before `id` through `id`: what a
    /// reader decodes to rebuild the batch at `id` standing alone. Empty when no such row is kept.
    public func outboxChain(host: String, epoch: UInt64, through id: Int64) throws -> [OutboxRow] {
        try database.read { db in
            guard let start = try db.value("""
                SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ? AND standalone <> 0 AND id <= ?
                """, [host, Int64(bitPattern: epoch), id])?.int64 else { return [] }
            return try db.rows("SELECT \(OutboxRow.columns) FROM sync_outbox WHERE host = ? AND epoch = ? AND id BETWEEN ? AND ? ORDER BY id",
                               [host, Int64(bitPattern: epoch), start, id]).map(OutboxRow.init)
        }
    }

    /// The id of `host`'s newest outbox row of `epoch`.
    public func outboxLatest(host: String, epoch: UInt64) throws -> Int64? {
        try database.read { db in
            try db.value("SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ?", [host, Int64(bitPattern: epoch)])?.int64
        }
    }

    /// The outbox's first and last ids and its row count and bytes (nil ids when empty).
    public func outboxExtent() throws -> (first: Int64?, last: Int64?, rows: Int, bytes: Int64) {
        try database.read { db in
            let row = try db.rows("SELECT min(id), max(id), count(*), coalesce(sum(length(batch)), 0) FROM sync_outbox")[0]
            return (row[0].int64, row[1].int64, Int(try row.integer(2)), try row.integer(3))
        }
    }

    /// Deletes the outbox rows no reader needs any more: of each host, the rows every upstream holds
    /// (`held`: host → the epoch and last tick the slowest upstream applied; hosts absent are held by
    /// none) and that were applied before `keepSince`, except from the last standalone row of that part
    /// on (a reader starting within it decodes from there); rows of older epochs before that row go too.
    /// Returns the number of rows deleted.
    @discardableResult
    public func pruneOutbox(held: [String: (epoch: UInt64, through: UInt64)], keepSince: Int64) throws -> Int {
        try database.write { db in
            var deleted = 0
            for (host, h) in held {
                let epoch = Int64(bitPattern: h.epoch)
                // The newest standalone row wholly held and old enough: everything before it can go.
                guard let cut = try db.value("""
                    SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ? AND standalone <> 0 AND last_seq <= ? AND applied_at < ?
                    """, [host, epoch, Int64(clamping: h.through), keepSince])?.int64 else { continue }
                deleted += try db.execute("DELETE FROM sync_outbox WHERE host = ? AND id < ?", [host, cut])
            }
            return deleted
        }
    }
}
