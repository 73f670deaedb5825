import Foundation
import GRDB
import TwinCore

/// Packed state history: closed versions move from the `versions` table into `version_blocks`, one
/// block per lifetime class (``SpanClass``) and clock hour of their end, encoded by ``VersionCodec``. The
/// `versions` table keeps the open versions and those closed within the current hour. Blocks hold
/// versions as stored (sensitive values sealed); readers open them as they open table rows.
extension TwinStore {
    /// Versions per block at most, so a block decodes in bounded time and memory.
    static let versionsPerBlock = 20_000

    /// Packs the closed versions that ended before `horizon` (the sealer calls it hourly). One
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
                    try Self.insertBlock(db, span: span, Array(list[start..<min(start + Self.versionsPerBlock, list.count)]))
                }
            }
            try db.execute(sql: "DELETE FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?", arguments: [horizon])
            return rows.count
        }
    }

    static func insertBlock(_ db: Database, span: Int, _ list: [EntityVersion]) throws {
        guard !list.isEmpty else { return }
        let froms = list.map(\.validFrom), tos = list.map { $0.validTo ?? $0.validFrom }
        try db.cachedStatement(sql: "INSERT INTO version_blocks(span, min_from, max_from, min_to, max_to, count, data) VALUES (?, ?, ?, ?, ?, ?, ?)").execute(
            arguments: [span, froms.min()!, froms.max()!, tos.min()!, tos.max()!, list.count, Data(VersionCodec.encode(list))])
    }

    /// The versions of the blocks `sql` selects (stored form), decoded; damage names the block.
    func packed(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [EntityVersion] {
        var out: [EntityVersion] = []
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT id, data FROM version_blocks WHERE \(sql)"), arguments: arguments) {
            do { out += try VersionCodec.decode([UInt8](row["data"] as Data)) } catch {
                throw TwinError.corrupt(what: "version block \(row["id"] as Int64) in \(dataDir)/twin.db", detail: "\(error)")
            }
        }
        return out
    }

    /// Packed versions of lifetime class `span` alive at `at` (started within the class's window before it).
    func packedAlive(_ db: Database, span: Int, at: Int64) throws -> [EntityVersion] {
        let earliest = at > Int64.min + SpanClass.window(span) ? at - SpanClass.window(span) : Int64.min
        return try packed(db, "span = ? AND max_from >= ? AND min_from <= ? AND max_to > ?", [span, earliest, at, at])
            .filter { $0.validFrom >= earliest && $0.validFrom <= at && ($0.validTo ?? .max) > at }
    }

    /// Packed versions that started in `[from, to]`.
    func packedStarting(_ db: Database, from: Int64, to: Int64) throws -> [EntityVersion] {
        try packed(db, "max_from >= ? AND min_from <= ?", [from, to]).filter { $0.validFrom >= from && $0.validFrom <= to }
    }

    /// Packed versions that ended in `[from, to]`.
    func packedEnding(_ db: Database, from: Int64, to: Int64) throws -> [EntityVersion] {
        try packed(db, "max_to >= ? AND min_to <= ?", [from, to]).filter { ($0.validTo ?? .min) >= from && ($0.validTo ?? .max) <= to }
    }

    /// A stored version as read: its key and sealed attributes opened where a key is at hand.
    func opened(_ v: EntityVersion) -> EntityVersion {
        guard let cipher else { return v }
        var o = v
        o.key = cipher.open(v.kind, key: v.key)
        o.attributes = cipher.open(v.kind, v.attributes)
        return o
    }
}
