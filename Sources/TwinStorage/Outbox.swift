import Foundation
import GRDB
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

    init(_ row: Row) {
        self.init(id: row["id"], host: row["host"], epoch: UInt64(bitPattern: row["epoch"]), firstSeq: UInt64(row["first_seq"] as Int64),
                  lastSeq: UInt64(row["last_seq"] as Int64), standalone: row["standalone"], appliedAt: row["applied_at"],
                  batch: Array((row["batch"] as Data?) ?? Data()))
    }
}

extension TwinStore {
    static func append(_ o: OutboxRow, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO sync_outbox(host, epoch, first_seq, last_seq, standalone, applied_at, batch) VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [o.host, Int64(bitPattern: o.epoch), Int64(o.firstSeq), Int64(o.lastSeq), o.standalone, o.appliedAt, Data(o.batch)])
    }

    /// Up to `limit` outbox rows after `id`, in order.
    public func outbox(after id: Int64, limit: Int) throws -> [OutboxRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sync_outbox WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit]).map(OutboxRow.init)
        }
    }

    /// `host`'s outbox rows of `epoch` from its last standalone row at or before `id` through `id`: what a
    /// reader decodes to rebuild the batch at `id` standing alone. Empty when no such row is kept.
    public func outboxChain(host: String, epoch: UInt64, through id: Int64) throws -> [OutboxRow] {
        try pool.read { db in
            guard let start = try Int64.fetchOne(db, sql: """
                SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ? AND standalone AND id <= ?
                """, arguments: [host, Int64(bitPattern: epoch), id]) else { return [] }
            return try Row.fetchAll(db, sql: "SELECT * FROM sync_outbox WHERE host = ? AND epoch = ? AND id BETWEEN ? AND ? ORDER BY id",
                                    arguments: [host, Int64(bitPattern: epoch), start, id]).map(OutboxRow.init)
        }
    }

    /// The id of `host`'s newest outbox row of `epoch`.
    public func outboxLatest(host: String, epoch: UInt64) throws -> Int64? {
        try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ?", arguments: [host, Int64(bitPattern: epoch)])
        }
    }

    /// The outbox's first and last ids and its row count and bytes (nil ids when empty).
    public func outboxExtent() throws -> (first: Int64?, last: Int64?, rows: Int, bytes: Int64) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT min(id) AS a, max(id) AS b, count(*) AS n, coalesce(sum(length(batch)), 0) AS s FROM sync_outbox")!
            return (row["a"], row["b"], row["n"], row["s"])
        }
    }

    /// Deletes the outbox rows no reader needs any more: of each host, the rows every upstream holds
    /// (`held`: host → the epoch and last tick the slowest upstream applied; hosts absent are held by
    /// none) and that were applied before `keepSince`, except from the last standalone row of that part
    /// on (a reader starting within it decodes from there); rows of older epochs before that row go too.
    /// Returns the number of rows deleted.
    @discardableResult
    public func pruneOutbox(held: [String: (epoch: UInt64, through: UInt64)], keepSince: Int64) throws -> Int {
        try pool.write { db in
            var deleted = 0
            for (host, h) in held {
                let epoch = Int64(bitPattern: h.epoch)
                // The newest standalone row wholly held and old enough: everything before it can go.
                guard let cut = try Int64.fetchOne(db, sql: """
                    SELECT max(id) FROM sync_outbox WHERE host = ? AND epoch = ? AND standalone AND last_seq <= ? AND applied_at < ?
                    """, arguments: [host, epoch, Int64(clamping: h.through), keepSince]) else { continue }
                try db.execute(sql: "DELETE FROM sync_outbox WHERE host = ? AND id < ?", arguments: [host, cut])
                deleted += db.changesCount
            }
            return deleted
        }
    }
}
