import Foundation
import GRDB
import TwinCore

/// Packed state history: closed versions move from the `versions` table into `version_blocks` — every
/// minute of ticks that closed any (a pack-only sealer job) and at each seal — one block per lifetime class
/// (``SpanClass``), encoded by ``VersionCodec``. The `versions` table keeps the open versions and those
/// closed in the last minute or two. Blocks hold
/// versions as stored (sensitive values sealed); readers open them as they open table rows.
extension TwinStore {
    /// Versions per block at most, so a block decodes in bounded time and memory.
    static let versionsPerBlock = 20_000
    /// Versions per merged block at most: a query `--at T` decodes a block of each lifetime class whose
    /// starts may hold T (about 3.5 µs a version), so an hour of a churning class is cut into slices of
    /// consecutive starts. On the churn hour 4,096 costs 2.4 % more bytes than 20,000 (BENCHMARKS.md).
    static let versionsPerMergedBlock = 4_096

    /// Packs the closed versions that ended before `horizon` (the sealer, every minute and at each seal). One
    /// transaction: a version is either a row or in a block, never both nor neither.
    /// Returns the number of versions packed.
    @discardableResult
    func packVersions(before horizon: Int64) throws -> Int {
        try pool.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, kind, key, valid_from, valid_to, span, attributes FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?",
                                        arguments: [horizon])
            guard !rows.isEmpty else { return 0 }
            var bySpan: [Int: [EntityVersion]] = [:]
            for row in rows {
                guard let kind = EntityKind(rawValue: row["kind"]) else { continue } // unknown kinds stay rows
                let id: Int64 = row["id"]
                let from: Int64 = row["valid_from"], to: Int64 = row["valid_to"]
                let span: Int = row["span"] ?? SpanClass.of(to - from)
                bySpan[span, default: []].append(EntityVersion(kind: kind, key: row["key"], attributes: try AttributeJSON.decode(row["attributes"], where: "versions row \(id)"),
                                                                validFrom: from, validTo: to))
            }
            for (span, list) in bySpan {
                for start in stride(from: 0, to: list.count, by: Self.versionsPerBlock) {
                    try insertBlock(db, span: span, Array(list[start..<min(start + Self.versionsPerBlock, list.count)]))
                }
            }
            try db.execute(sql: "DELETE FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?", arguments: [horizon])
            return rows.count
        }
    }

    /// Inserts a block of `list` (encoded here unless `data` is given).
    func insertBlock(_ db: Database, span: Int, _ list: [EntityVersion], data: [UInt8]? = nil) throws {
        guard !list.isEmpty else { return }
        let froms = list.map(\.validFrom), tos = list.map { $0.validTo ?? $0.validFrom }
        try db.cachedStatement(sql: "INSERT INTO version_blocks(span, min_from, max_from, min_to, max_to, count, data) VALUES (?, ?, ?, ?, ?, ?, ?)").execute(
            arguments: [span, froms.min()!, froms.max()!, tos.min()!, tos.max()!, list.count, Data(data ?? encodeBlock(list))])
    }

    /// A block of stored versions. With a cipher that can open them, their sealed values are opened and
    /// sealed again together as the block's section (they then compress); otherwise they stay as stored.
    func encodeBlock(_ stored: [EntityVersion]) -> [UInt8] {
        if let cipher, let clear = Self.inClear(stored, cipher), let block = VersionCodec.encode(clear, sealer: cipher) { return block }
        return VersionCodec.encode(stored)
    }

    /// Stored versions with their sealed keys and values opened; nil when one cannot be opened here.
    private static func inClear(_ stored: [EntityVersion], _ cipher: any AttributeCipher) -> [EntityVersion]? {
        var clear: [EntityVersion] = []
        clear.reserveCapacity(stored.count)
        for v in stored {
            guard let key = cipher.clear(v.kind, key: v.key), let attrs = cipher.clear(v.kind, v.attributes) else { return nil }
            clear.append(EntityVersion(kind: v.kind, key: key, attributes: attrs, validFrom: v.validFrom, validTo: v.validTo))
        }
        return clear
    }

    /// Merges, per lifetime class, the blocks whose versions ended in the same clock hour before `horizon`
    /// into as few blocks as ``versionsPerMergedBlock`` allows (the sealer, after packing): an hour of a busy host
    /// packs into a block a minute per class, and one block an hour compresses to about half of those
    /// (more shared strings, more changes stored as deltas; BENCHMARKS.md, "State history"). Each hour and
    /// class is read and encoded outside the write lock, then swapped in one transaction if its blocks are
    /// still there. A group with a block that cannot be opened here (sealed under a key this process lacks)
    /// is left as it is. At most `limit` hours and classes a call, oldest first, so a store upgraded from
    /// minute blocks converts a little at each seal. Returns the number of blocks merged away.
    @discardableResult
    func compactVersionBlocks(before horizon: Int64, limit: Int = 24) throws -> Int {
        let hour = StoragePolicy.hour, per = Self.versionsPerMergedBlock
        let groups = try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT span, max_to / ? AS h FROM version_blocks WHERE max_to < ? AND max_to >= 0
                GROUP BY span, h HAVING count(*) > (sum(count) + ? - 1) / ? ORDER BY h, span
                """, arguments: [hour, floorDiv(horizon, hour) * hour, per, per]).map { (span: $0["span"] as Int, start: ($0["h"] as Int64) * hour) }
        }
        var merged = 0
        for group in groups.prefix(limit) {
            let rows = try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT id, data FROM version_blocks WHERE span = ? AND max_to >= ? AND max_to < ?",
                                 arguments: [group.span, group.start, group.start + hour])
            }
            guard rows.count > 1, let blocks = try merge(rows) else { continue }
            let ids = rows.map { String($0["id"] as Int64) }.joined(separator: ",")
            try pool.write { db in
                guard try Int.fetchOne(db, sql: "SELECT count(*) FROM version_blocks WHERE id IN (\(ids))") == rows.count else { return }
                try db.execute(sql: "DELETE FROM version_blocks WHERE id IN (\(ids))")
                for block in blocks { try insertBlock(db, span: group.span, block.list, data: block.data) }
                merged += rows.count - blocks.count
            }
        }
        return merged
    }

    /// The versions of `rows` (id, data) packed again as blocks of at most ``versionsPerMergedBlock``; nil when
    /// a block cannot be opened here.
    func merge(_ rows: [Row]) throws -> [(list: [EntityVersion], data: [UInt8])]? {
        var versions: [EntityVersion] = []
        for row in rows {
            guard let list = try clearVersions([UInt8](row["data"] as Data), id: row["id"]) else { return nil }
            versions += list
        }
        versions.sort { ($0.validFrom, $0.kind.rawValue, $0.key) < ($1.validFrom, $1.kind.rawValue, $1.key) }
        var blocks: [(list: [EntityVersion], data: [UInt8])] = []
        let per = Self.versionsPerMergedBlock
        for start in stride(from: 0, to: versions.count, by: per) {
            let list = Array(versions[start..<min(start + per, versions.count)])
            guard let data = cipher.map({ VersionCodec.encode(list, sealer: $0) }) ?? VersionCodec.encode(list) else { return nil }
            blocks.append((list, data))
        }
        return blocks
    }

    /// A block's versions in clear (the form ``VersionCodec/encode(_:sealer:)`` takes), or as stored when
    /// the store has no cipher; nil when a sealed string cannot be opened here.
    private func clearVersions(_ blob: [UInt8], id: Int64) throws -> [EntityVersion]? {
        do {
            if let section = try VersionCodec.sealedSection(of: blob) {
                guard let cipher, cipher.openSection(section) != nil else { return nil }
                return try VersionCodec.decode(blob, sealer: cipher)
            }
            let stored = try VersionCodec.decode(blob)
            return cipher.map { Self.inClear(stored, $0) } ?? stored
        } catch {
            throw TwinError.corrupt(what: "version block \(id) in \(dataDir)/twin.db", detail: "\(error)")
        }
    }

    /// The versions `keep` accepts of the blocks `sql` selects (stored form), decoded; damage names the block.
    func packed(_ db: Database, _ sql: String, _ arguments: StatementArguments, keep: @escaping VersionCodec.Keep) throws -> [EntityVersion] {
        var out: [EntityVersion] = []
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT id, data FROM version_blocks WHERE \(sql)"), arguments: arguments) {
            do { out += try VersionCodec.decode([UInt8](row["data"] as Data), sealer: cipher, keep: keep) } catch {
                throw TwinError.corrupt(what: "version block \(row["id"] as Int64) in \(dataDir)/twin.db", detail: "\(error)")
            }
        }
        return out
    }

    /// Packed versions of lifetime class `span` alive at `at` (started within the class's window before it).
    func packedAlive(_ db: Database, span: Int, at: Int64) throws -> [EntityVersion] {
        let earliest = at > Int64.min + SpanClass.window(span) ? at - SpanClass.window(span) : Int64.min
        return try packed(db, "span = ? AND max_from >= ? AND min_from <= ? AND max_to > ?", [span, earliest, at, at]) { from, to in
            from >= earliest && from <= at && (to ?? .max) > at
        }
    }

    /// Packed versions that started in `[from, to]`.
    func packedStarting(_ db: Database, from: Int64, to: Int64) throws -> [EntityVersion] {
        try packed(db, "max_from >= ? AND min_from <= ?", [from, to]) { start, _ in start >= from && start <= to }
    }

    /// Packed versions that ended in `[from, to]`.
    func packedEnding(_ db: Database, from: Int64, to: Int64) throws -> [EntityVersion] {
        try packed(db, "max_to >= ? AND min_to <= ?", [from, to]) { _, end in (end ?? .min) >= from && (end ?? .max) <= to }
    }

    /// A stored version as read: its key and sealed attributes opened where a key is at hand (a block's
    /// sealed section is opened as it is decoded).
    func opened(_ v: EntityVersion) -> EntityVersion {
        guard let cipher else { return v }
        var o = v
        o.key = cipher.open(v.kind, key: v.key)
        o.attributes = cipher.open(v.kind, v.attributes)
        return o
    }
}

/// What the state history costs in a store, and what packing the closed rows would make of it.
public struct StateStorageFigures: Sendable, Encodable {
    /// Versions still rows (open, or closed within the current hour), and packed ones.
    public var rowVersions = 0, packedVersions = 0
    /// Bytes of the `versions` rows' attributes as stored, and of the blocks' data.
    public var rowAttributeBytes = 0, blockBytes = 0
    /// The closed rows packed as the sealer would (per lifetime class), without writing: their block bytes.
    public var closedRows = 0, closedRowsPackedBytes = 0
    /// Microseconds per version to encode and to decode those blocks.
    public var encodeMicrosPerVersion = 0.0, decodeMicrosPerVersion = 0.0
    /// The packed blocks merged per lifetime class and clock hour as the sealer's compaction would, without
    /// writing: the blocks before and after, their bytes, and the microseconds per version to merge.
    public var hourGroups = 0, hourGroupBlocks = 0, hourGroupBytes = 0, hourMergedBytes = 0, mergeMicrosPerVersion = 0.0

    enum CodingKeys: String, CodingKey {
        case rowVersions = "row_versions", packedVersions = "packed_versions", rowAttributeBytes = "row_attribute_bytes", blockBytes = "block_bytes"
        case closedRows = "closed_rows", closedRowsPackedBytes = "closed_rows_packed_bytes"
        case encodeMicrosPerVersion = "encode_us_per_version", decodeMicrosPerVersion = "decode_us_per_version"
        case hourGroups = "hour_groups", hourGroupBlocks = "hour_group_blocks", hourGroupBytes = "hour_group_bytes", hourMergedBytes = "hour_merged_bytes"
        case mergeMicrosPerVersion = "merge_us_per_version"
    }
}

extension TwinStore {
    /// Measures the state history (read-only): rows, blocks, and the closed rows packed in memory.
    public func stateStorageFigures() throws -> StateStorageFigures {
        try pool.read { db in
            var f = StateStorageFigures()
            f.rowVersions = try Int.fetchOne(db, sql: "SELECT count(*) FROM versions") ?? 0
            f.rowAttributeBytes = try Int.fetchOne(db, sql: "SELECT coalesce(sum(length(attributes)), 0) FROM versions") ?? 0
            f.packedVersions = try Int.fetchOne(db, sql: "SELECT coalesce(sum(count), 0) FROM version_blocks") ?? 0
            f.blockBytes = try Int.fetchOne(db, sql: "SELECT coalesce(sum(length(data)), 0) FROM version_blocks") ?? 0
            var bySpan: [Int: [EntityVersion]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, kind, key, valid_from, valid_to, span, attributes FROM versions WHERE valid_to IS NOT NULL") {
                guard let kind = EntityKind(rawValue: row["kind"]) else { continue }
                let from: Int64 = row["valid_from"], to: Int64 = row["valid_to"]
                bySpan[row["span"] ?? SpanClass.of(to - from), default: []].append(
                    EntityVersion(kind: kind, key: row["key"], attributes: try AttributeJSON.decode(row["attributes"], where: "versions row \(row["id"] as Int64)"),
                                  validFrom: from, validTo: to))
            }
            f.closedRows = bySpan.values.reduce(0) { $0 + $1.count }
            var blocks: [[UInt8]] = []
            let a = DispatchTime.now().uptimeNanoseconds
            for list in bySpan.values { blocks.append(encodeBlock(list)) }
            let b = DispatchTime.now().uptimeNanoseconds
            for block in blocks { _ = try VersionCodec.decode(block, sealer: cipher) }
            let c = DispatchTime.now().uptimeNanoseconds
            f.closedRowsPackedBytes = blocks.reduce(0) { $0 + $1.count }
            if f.closedRows > 0 {
                f.encodeMicrosPerVersion = Double(b - a) / 1000 / Double(f.closedRows)
                f.decodeMicrosPerVersion = Double(c - b) / 1000 / Double(f.closedRows)
            }
            let hour = StoragePolicy.hour
            var mergedVersions = 0, mergeNanos: UInt64 = 0
            for group in try Row.fetchAll(db, sql: "SELECT span, max_to / ? AS h FROM version_blocks WHERE max_to >= 0 GROUP BY span, h HAVING count(*) > 1", arguments: [hour]) {
                let start = (group["h"] as Int64) * hour
                let rows = try Row.fetchAll(db, sql: "SELECT id, data, count FROM version_blocks WHERE span = ? AND max_to >= ? AND max_to < ?",
                                            arguments: [group["span"] as Int, start, start + hour])
                let t0 = DispatchTime.now().uptimeNanoseconds
                guard let blocks = try merge(rows) else { continue }
                mergeNanos += DispatchTime.now().uptimeNanoseconds - t0
                f.hourGroups += 1
                f.hourGroupBlocks += rows.count
                f.hourGroupBytes += rows.reduce(0) { $0 + ($1["data"] as Data).count }
                f.hourMergedBytes += blocks.reduce(0) { $0 + $1.data.count }
                mergedVersions += rows.reduce(0) { $0 + ($1["count"] as Int) }
            }
            if mergedVersions > 0 { f.mergeMicrosPerVersion = Double(mergeNanos) / 1000 / Double(mergedVersions) }
            return f
        }
    }
}
