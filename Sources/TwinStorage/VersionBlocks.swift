import Foundation
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

    /// Packs the closed versions that ended before `horizon` (the sealer, every minute and at each seal): a
    /// version is either a row or in a block, never both nor neither. The rows are read and the blocks
    /// encoded outside the write lock (opening, sealing again and compressing a minute of a churning host's
    /// versions took 200 ms, and the collection thread's commits waited for it), then swapped in one
    /// transaction if every row read is still there; if one is not (another hub packed them), nothing is.
    /// Returns the number of versions packed.
    @discardableResult
    func packVersions(before horizon: Int64) throws -> Int {
        let dialect = database.dialect
        var bySpan: [Int: [EntityVersion]] = [:]
        var packed: [Int64] = []
        for row in try database.read({ db in
            try db.rows("SELECT id, kind, key, valid_from, valid_to, span, attributes FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?", [horizon])
        }) {
            guard let (span, version) = try Self.closedVersion(row, dialect) else { continue } // unknown kinds stay rows
            bySpan[span, default: []].append(version)
            packed.append(try row.integer(0))
        }
        guard !packed.isEmpty else { return 0 }
        var blocks: [(span: Int, list: [EntityVersion], data: [UInt8])] = []
        for (span, list) in bySpan {
            for start in stride(from: 0, to: list.count, by: Self.versionsPerBlock) {
                let block = Array(list[start..<min(start + Self.versionsPerBlock, list.count)])
                blocks.append((span, block, encodeBlock(block)))
            }
        }
        // The ids go as one JSON array, so the statements' text (and their cached statements) is the same every time.
        let ids = "[" + packed.map(String.init).joined(separator: ",") + "]"
        let idList = dialect == .postgres ? "SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(? AS jsonb))" : "SELECT value FROM json_each(?)"
        return try database.write { db in
            try Self.takeMaintenanceTurn(db)
            guard try db.rows("SELECT count(*) FROM versions WHERE id IN (\(idList))", [ids]).first?.integer(0) == Int64(packed.count) else { return 0 }
            for b in blocks { try insertBlock(db, span: b.span, b.list, data: b.data) }
            try db.execute("DELETE FROM versions WHERE id IN (\(idList))", [ids])
            return packed.count
        }
    }

    /// A closed `versions` row (`id, kind, key, valid_from, valid_to, span, attributes`) as stored, with its
    /// lifetime class; nil for a kind this version does not know.
    static func closedVersion(_ row: SQLRow, _ dialect: SQLDialect) throws -> (span: Int, version: EntityVersion)? {
        guard let kind = EntityKind(rawValue: try row.text(1)) else { return nil }
        let id = try row.integer(0), from = try row.integer(3), to = try row.integer(4)
        let span = row[5].int64.map { Int($0) } ?? SpanClass.of(to - from)
        return (span, EntityVersion(kind: kind, key: try row.text(2), attributes: try AttributeJSON.decode(row[6], dialect, where: "versions row \(id)"),
                                    validFrom: from, validTo: to))
    }

    /// Inserts a block of `list` (encoded here unless `data` is given).
    func insertBlock(_ db: any StoreStatements, span: Int, _ list: [EntityVersion], data: [UInt8]? = nil) throws {
        guard !list.isEmpty else { return }
        let froms = list.map(\.validFrom), tos = list.map { $0.validTo ?? $0.validFrom }
        try db.execute("INSERT INTO version_blocks(span, min_from, max_from, min_to, max_to, count, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [span, froms.min()!, froms.max()!, tos.min()!, tos.max()!, list.count, data ?? encodeBlock(list)])
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
        let groups = try database.read { db in
            try db.rows("""
                SELECT span, max_to / ? AS h FROM version_blocks WHERE max_to < ? AND max_to >= 0
                GROUP BY span, h HAVING count(*) > (sum(count) + ? - 1) / ? ORDER BY h, span
                """, [hour, floorDiv(horizon, hour) * hour, per, per]).map { (span: Int(try $0.integer(0)), start: try $0.integer(1) * hour) }
        }
        var merged = 0
        for group in groups.prefix(limit) {
            let rows = try database.read { db in
                try db.rows("SELECT id, data FROM version_blocks WHERE span = ? AND max_to >= ? AND max_to < ?", [group.span, group.start, group.start + hour])
            }
            guard rows.count > 1, let blocks = try merge(rows) else { continue }
            let ids = try rows.map { String(try $0.integer(0)) }.joined(separator: ",")
            try database.write { db in
                try Self.takeMaintenanceTurn(db)
                guard try db.value("SELECT count(*) FROM version_blocks WHERE id IN (\(ids))")?.int64 == Int64(rows.count) else { return }
                try db.execute("DELETE FROM version_blocks WHERE id IN (\(ids))")
                for block in blocks { try insertBlock(db, span: group.span, block.list, data: block.data) }
                merged += rows.count - blocks.count
            }
        }
        return merged
    }

    /// The versions of `rows` (id, data) packed again as blocks of at most ``versionsPerMergedBlock``; nil when
    /// a block cannot be opened here.
    func merge(_ rows: [SQLRow]) throws -> [(list: [EntityVersion], data: [UInt8])]? {
        var versions: [EntityVersion] = []
        for row in rows {
            guard let list = try clearVersions(try row.blob(1), id: try row.integer(0)) else { return nil }
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

    /// The versions `keep` accepts of the blocks `sql` selects, decoded and passed through `each` block by
    /// block (a block's versions are let go as soon as `each` has made what the reader keeps of them);
    /// damage names the block.
    func packed(_ db: any StoreStatements, _ sql: String, _ arguments: [any SQLValueConvertible], kinds: Set<EntityKind>? = nil,
                each: (EntityVersion) -> EntityVersion, keep: @escaping VersionCodec.Keep) throws -> [EntityVersion] {
        var out: [EntityVersion] = []
        for row in try db.rows("SELECT id, data FROM version_blocks WHERE \(sql)", arguments) {
            out += try decodeBlock(row[1], id: try row.integer(0), kinds: kinds, keep: keep).lazy.map(each)
        }
        return out
    }

    /// The versions `keep` accepts of one block (of `kinds`, when given); damage names the block.
    private func decodeBlock(_ data: SQLValue, id: Int64, kinds: Set<EntityKind>? = nil, keep: @escaping VersionCodec.Keep) throws -> [EntityVersion] {
        guard case .blob(let bytes) = data else { throw TwinError.corrupt(what: "version block \(id) in \(dataDir)/twin.db", detail: "its data is not a blob") }
        do { return try VersionCodec.decode(bytes, sealer: cipher, kinds: kinds, keep: keep) } catch {
            throw TwinError.corrupt(what: "version block \(id) in \(dataDir)/twin.db", detail: "\(error)")
        }
    }

    /// Packed versions alive at `at` of each lifetime class in `classes` (started within the class's window
    /// before it, from `earliest[class]`): the blocks of every class in one statement.
    func packedAlive(_ db: any StoreStatements, classes: ClosedRange<Int>, earliest: [Int64], at: Int64,
                     kinds: Set<EntityKind>? = nil) throws -> [EntityVersion] {
        let branch = "SELECT id, span, data FROM version_blocks WHERE span = ? AND max_from >= ? AND min_from <= ? AND max_to > ?"
        var out: [EntityVersion] = []
        for row in try db.rows(classes.map { _ in branch }.joined(separator: " UNION ALL "), classes.flatMap { [$0, earliest[$0], at, at] as [any SQLValueConvertible] }) {
            let from = earliest[Int(try row.integer(1))]
            out += try decodeBlock(row[2], id: try row.integer(0), kinds: kinds) { start, end in start >= from && start <= at && (end ?? .max) > at }
        }
        return out
    }

    /// Packed versions that started in `[from, to]`, of `kinds` when given, opened, with only `attributes`
    /// when given.
    func packedStarting(_ db: any StoreStatements, from: Int64, to: Int64, kinds: Set<EntityKind>? = nil,
                        attributes: Set<String>? = nil) throws -> [EntityVersion] {
        try packed(db, "max_from >= ? AND min_from <= ?", [from, to], kinds: kinds, each: { self.opened($0, keeping: attributes) }) { start, _ in start >= from && start <= to }
    }

    /// Packed versions that ended in `[from, to]`, as ``packedStarting(_:from:to:kinds:attributes:)``.
    func packedEnding(_ db: any StoreStatements, from: Int64, to: Int64, kinds: Set<EntityKind>? = nil,
                      attributes: Set<String>? = nil) throws -> [EntityVersion] {
        try packed(db, "max_to >= ? AND min_to <= ?", [from, to], kinds: kinds, each: { self.opened($0, keeping: attributes) }) { _, end in (end ?? .min) >= from && (end ?? .max) <= to }
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

    /// A stored version opened, with only the attributes named in `names` (all when nil).
    func opened(_ v: EntityVersion, keeping names: Set<String>?) -> EntityVersion {
        var o = opened(v)
        o.attributes = Self.only(names, of: o.attributes)
        return o
    }

    /// `attributes` with only those named in `names` (all when nil).
    static func only(_ names: Set<String>?, of attributes: [String: AttributeValue]) -> [String: AttributeValue] {
        guard let names else { return attributes }
        return attributes.filter { names.contains($0.key) }
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
        try database.read { db in
            var f = StateStorageFigures()
            let count = { (sql: String) in Int(try db.value(sql)?.int64 ?? 0) }
            f.rowVersions = try count("SELECT count(*) FROM versions")
            f.rowAttributeBytes = try count("SELECT coalesce(sum(length(attributes)), 0) FROM versions")
            f.packedVersions = try count("SELECT coalesce(sum(count), 0) FROM version_blocks")
            f.blockBytes = try count("SELECT coalesce(sum(length(data)), 0) FROM version_blocks")
            var bySpan: [Int: [EntityVersion]] = [:]
            for row in try db.rows("SELECT id, kind, key, valid_from, valid_to, span, attributes FROM versions WHERE valid_to IS NOT NULL") {
                guard let (span, version) = try Self.closedVersion(row, db.dialect) else { continue }
                bySpan[span, default: []].append(version)
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
            for group in try db.rows("SELECT span, max_to / ? AS h FROM version_blocks WHERE max_to >= 0 GROUP BY span, h HAVING count(*) > 1", [hour]) {
                let start = try group.integer(1) * hour
                let rows = try db.rows("SELECT id, data, count FROM version_blocks WHERE span = ? AND max_to >= ? AND max_to < ?", [group.integer(0), start, start + hour])
                let t0 = DispatchTime.now().uptimeNanoseconds
                guard let blocks = try merge(rows) else { continue }
                mergeNanos += DispatchTime.now().uptimeNanoseconds - t0
                f.hourGroups += 1
                f.hourGroupBlocks += rows.count
                f.hourGroupBytes += rows.reduce(0) { $0 + ($1[1].bytes?.count ?? 0) }
                f.hourMergedBytes += blocks.reduce(0) { $0 + $1.data.count }
                mergedVersions += rows.reduce(0) { $0 + Int($1[2].int64 ?? 0) }
            }
            if mergedVersions > 0 { f.mergeMicrosPerVersion = Double(mergeNanos) / 1000 / Double(mergedVersions) }
            return f
        }
    }
}
