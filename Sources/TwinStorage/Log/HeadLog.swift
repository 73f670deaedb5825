import Foundation
import TwinCore

/// Where a store's head log lives: segment files in the data directory (the embedded store), or rows of
/// the `head_log` table beside the other tables (PostgreSQL), so that every reader of the database sees
/// the newest samples and another machine can take the log over.
///
/// A table's segment is the rows of one hub with one segment number: each record (a tick or a pushed
/// batch, encoded as in a file: ``TickRecordEncoder``) is one row, committed on its own; the sealer deletes
/// a head window's rows in the transaction that writes its chunks, so every row in the table is unsealed.
enum HeadLogPlace: Sendable, Equatable {
    case files
    case table(hub: String)

    /// The `meta` key of the newest sealed segment.
    var sealedMark: String {
        switch self {
        case .files: "log_sealed"
        case .table(let hub): LogTable.markPrefix + hub
        }
    }
}

/// Appends the head's records to the current segment. Not thread-safe: owned by the writer.
protocol HeadLogWriter: AnyObject {
    /// The current segment's number.
    var seq: UInt64 { get }
    /// Starts segment `seq` (after the current one, which is complete) and hands back the current one
    /// when it still needs flushing (``FinishedSegment``).
    func start(seq: UInt64) throws -> FinishedSegment?
    /// Appends one tick. On failure nothing of it is stored.
    func appendTick(_ t: Int64, ids: [Int64], values: [Double]) throws
    /// Appends a batch of samples `(id, t, v)`.
    func appendBatch(_ samples: [(Int64, Int64, Double)]) throws
    /// Makes the current segment durable (at a stop).
    func closeSegment() throws
}

extension LogWriter: HeadLogWriter {}

/// The head log as rows of `head_log(hub, segment, record, data)`.
enum LogTable {
    static let markPrefix = "log_sealed:"

    /// Appends records as rows, each committed alone (one round trip).
    final class Writer: HeadLogWriter {
        private let database: any StoreDatabase
        private let hub: String
        private(set) var seq: UInt64 = 0
        private var record = 0
        private var encoder = TickRecordEncoder()
        /// An insert failed: whether it committed is unknown (a connection lost after the commit), so the
        /// next record goes to a new segment rather than reuse the number or the encoder's state.
        private var unsure = false

        init(database: any StoreDatabase, hub: String) {
            self.database = database
            self.hub = hub
        }

        func start(seq: UInt64) throws -> FinishedSegment? {
            self.seq = seq
            record = 0
            encoder = TickRecordEncoder()
            unsure = false
            return nil // each row was committed on its own
        }

        func appendTick(_ t: Int64, ids: [Int64], values: [Double]) throws {
            if unsure { _ = try start(seq: seq + 1) }
            let body = encoder.tickRecord(t, ids: ids, values: values)
            try insert(body.bytes)
        }

        func appendBatch(_ samples: [(Int64, Int64, Double)]) throws {
            if unsure { _ = try start(seq: seq + 1) }
            let body = encoder.batch(samples)
            try insert(body.bytes)
        }

        func closeSegment() throws {}

        private func insert(_ data: [UInt8]) throws {
            do {
                try database.executeAlone("INSERT INTO head_log(hub, segment, record, data) VALUES (?, ?, ?, ?)", [hub, Int64(seq), record, data])
            } catch {
                encoder.discardPending()
                unsure = true
                throw error
            }
            encoder.commitPending()
            record += 1
        }
    }

    /// The newest segment `hub` has rows of.
    static func newestSegment(_ db: any StoreStatements, hub: String) throws -> UInt64? {
        try db.value("SELECT max(segment) FROM head_log WHERE hub = ?", [hub])?.int64.map { UInt64($0) }
    }

    /// Replays `hub`'s rows (all unsealed: sealing deletes them) into a head, a segment at a time. A record
    /// that cannot be decoded stops the start with an error: unlike a file's torn tail, a committed row is
    /// whole, so it is damage.
    static func replay(_ database: any StoreDatabase, hub: String) throws -> LogRecovery {
        var r = LogRecovery()
        let segments = try database.read { db in
            try db.rows("SELECT DISTINCT segment FROM head_log WHERE hub = ? ORDER BY segment", [hub]).map { try $0.integer(0) }
        }
        for segment in segments {
            let rows = try database.read { db in
                try db.rows("SELECT record, data FROM head_log WHERE hub = ? AND segment = ? ORDER BY record", [hub, segment])
            }
            var tail = LogTail()
            for row in rows {
                guard try row.integer(0) == Int64(tail.records), tail.append(record: try row.blob(1)) else {
                    throw TwinError.corrupt(what: "head_log (hub \(hub), segment \(segment))",
                                            detail: tail.stopped ?? "record \(tail.records) is missing; the records after it cannot be read")
                }
            }
            for (id, list) in tail.byID {
                let slot = r.head.slot(id)
                for (t, v) in list { try? r.head.append(slot: slot, t, v) }
            }
            if let n = tail.newest, r.newest.map({ n > $0 }) ?? true { r.newest = n }
            r.ticks += tail.ticks
            r.throughSegment = UInt64(segment)
        }
        return r
    }
}

/// What a reader has decoded of the unsealed head log, kept between reads (``TwinStore/withLog``).
struct LogTails: Sendable {
    struct Key: Hashable, Comparable, Sendable {
        /// The hub whose rows these are (a table), or "" (files).
        var hub: String
        var segment: UInt64
        static func < (a: Key, b: Key) -> Bool { (a.hub, a.segment) < (b.hub, b.segment) }
    }

    var tails: [Key: LogTail] = [:]
    /// A table's rows read so far: each hub's last (segment, record).
    private var readThrough: [String: (segment: Int64, record: Int64)] = [:]
    /// Each hub's newest sealed segment as last read: a snapshot older than that is stale.
    private var sealed: [String: UInt64] = [:]
    /// The series whose samples the tails keep (all when nil): those asked for since the last seal of a
    /// file segment. A read of others decodes the unsealed segments again, keeping those too; after
    /// ``maxWidenings`` of these in one head window the tails keep every series until the next seal. A
    /// periodic reader of a few series (a forecast rule) then holds their samples, not the whole head window
    /// of every series (1.3 MB an hour into a quiet `run`, heaptrack, issue 18).
    private(set) var keep: Set<Int64>?
    private var widenings = 0
    private let keepsAll: Bool
    static let maxWidenings = 4

    /// Tails that keep every series (`keepsAll`: a pass over all of them), or those asked for.
    init(keepsAll: Bool) {
        self.keepsAll = keepsAll
        keep = keepsAll ? nil : []
    }

    /// Makes the tails keep `ids` (all when nil), starting them over when they did not.
    mutating func want(_ ids: Set<Int64>?) {
        guard let kept = keep else { return }
        if let ids, ids.isSubset(of: kept) { return }
        widenings += 1
        keep = widenings > Self.maxWidenings ? nil : ids.map { kept.union($0) }
        tails = [:]
        readThrough = [:]
    }

    /// Reads the rows of `head_log` added since the last read, and the hubs' sealed marks, in `db`'s
    /// transaction (one statement), dropping the segments sealed since. False when `db`'s snapshot is older
    /// than one read before (a seal it does not see has already dropped a segment here): the caller starts
    /// over in a new transaction, as a file reader does when a segment vanishes.
    mutating func advance(table db: any StoreStatements) throws -> Bool {
        let hubs = readThrough.keys.sorted()
        var sql = "SELECT hub, segment, record, data FROM head_log"
        var arguments: [any SQLValueConvertible] = []
        if !hubs.isEmpty {
            sql += " WHERE hub NOT IN (" + Array(repeating: "?", count: hubs.count).joined(separator: ", ") + ")"
            arguments += hubs
            for hub in hubs {
                let at = readThrough[hub]!
                sql += " OR (hub = ? AND (segment > ? OR (segment = ? AND record > ?)))"
                arguments += [hub, at.segment, at.segment, at.record] as [any SQLValueConvertible]
            }
        }
        sql += " UNION ALL SELECT substr(key, \(LogTable.markPrefix.count + 1)), CAST(value AS BIGINT), -1, NULL FROM meta WHERE key LIKE '\(LogTable.markPrefix)%'"
        sql += " ORDER BY 1, 2, 3"
        let rows = try db.rows(sql, arguments)
        // The marks first (record -1).
        var marks: [String: UInt64] = [:]
        for row in rows where try row.integer(2) < 0 { marks[try row.text(0)] = UInt64(try row.integer(1)) }
        for (hub, mark) in sealed where (marks[hub] ?? 0) < mark { return false }
        for (hub, mark) in marks where sealed[hub].map({ mark > $0 }) ?? true {
            sealed[hub] = mark
            tails = tails.filter { $0.key.hub != hub || $0.key.segment > mark }
        }
        for row in rows {
            let record = try row.integer(2)
            guard record >= 0 else { continue }
            let hub = try row.text(0), segment = try row.integer(1)
            let key = Key(hub: hub, segment: UInt64(segment))
            readThrough[hub] = (segment, record)
            guard key.segment > (sealed[hub] ?? 0) else { continue }
            // Taken out while it grows (appended to in place, not copied), and put back whatever happens.
            var tail = tails.removeValue(forKey: key) ?? LogTail(keep: keep)
            defer { tails[key] = tail }
            // A record out of turn cannot be decoded (records are encoded against the ones before).
            if record == Int64(tail.records) { _ = tail.append(record: try row.blob(3)) }
        }
        return true
    }

    /// Drops the tails of file segments up to `sealed`; after a seal, tails that keep some series keep none
    /// until asked again (``want(_:)``).
    mutating func dropFiles(through sealed: UInt64) {
        guard tails.keys.contains(where: { $0.segment <= sealed }) else { return }
        if keepsAll { tails = tails.filter { $0.key.segment > sealed } } else { (tails, keep, widenings) = ([:], [], 0) }
    }

    /// What the tails `keys` hold: samples of `ids` (all when nil) within `[from, to]`, counts and ticks.
    func read(_ keys: [Key], ids: Set<Int64>?, from: Int64, to: Int64) -> LogRead {
        var read = LogRead()
        for key in keys {
            guard let tail = tails[key] else { continue }
            read.samples += tail.samples
            read.segments += 1
            read.bytes += tail.bytes
            read.ticks += tail.ticks
            if let n = tail.newest, read.newest.map({ n > $0 }) ?? true { read.newest = n }
            if let o = tail.oldest, read.oldest.map({ o < $0 }) ?? true { read.oldest = o }
            func take(_ id: Int64, _ list: [(Int64, Double)]) {
                if list.first!.0 >= from && list.last!.0 <= to { read.byID[id, default: []] += list } else {
                    read.byID[id, default: []] += list.lazy.filter { $0.0 >= from && $0.0 <= to }
                }
            }
            if let ids {
                for id in ids { if let list = tail.byID[id] { take(id, list) } }
            } else {
                for (id, list) in tail.byID { take(id, list) }
            }
        }
        return read
    }
}

/// The session and transaction lock keys of hubs sharing a database (PostgreSQL advisory locks).
enum HubLocks {
    /// Held by a running hub named `name`, for as long as its session lasts.
    static func hub(_ name: String) -> Int64 { key("hosttwin hub " + name) }
    /// Held by the hub that writes `host`.
    static func host(_ name: String) -> Int64 { key("hosttwin host " + name) }
    /// Taken by each maintenance transaction (compaction, packing) for its duration.
    static let maintenance = key("hosttwin maintenance")

    private static func key(_ s: String) -> Int64 {
        var h = TwinDigest.FNV()
        h.add(s)
        return Int64(bitPattern: h.value)
    }
}

extension TwinStore {
    /// Makes the maintenance transactions of hubs sharing a database take turns (PostgreSQL's transaction
    /// advisory lock, released at commit): a transaction that reads what it rewrites after this sees the
    /// other hub's rewrite committed, never the rows it replaced. Nothing on SQLite (one writer).
    static func takeMaintenanceTurn(_ db: any StoreStatements) throws {
        guard db.dialect == .postgres else { return }
        _ = try db.rows("SELECT pg_advisory_xact_lock(?)", [HubLocks.maintenance])
    }
}
