import Foundation
import GRDB
import TwinCore

/// The rows of the `chunks` and `rollups` tables: one per group of series (``GroupBlock``) and head
/// window, hour or day, each holding its members' blobs.
extension TwinStore {
    /// Inserts one chunk row of `level` holding `series` (id → non-empty, time-sorted samples, all of one
    /// group). Nothing when `series` is empty.
    static func insertChunkRow(_ db: Database, level: Int, _ series: [Int64: [(Int64, Double)]]) throws {
        var encoded: [(id: Int64, count: Int, blob: [UInt8], minT: Int64, maxT: Int64)] = []
        for (id, s) in series where !s.isEmpty {
            encoded.append((id, s.count, try ChunkCodec.encodeMember(s), s[0].0, s[s.count - 1].0))
        }
        try insertChunkRow(db, level: level, encoded)
    }

    /// Inserts one chunk row of chunks already encoded as members (``ChunkCodec/encodeMember(_:)``; any
    /// order; all of one group).
    static func insertChunkRow(_ db: Database, level: Int, _ chunks: [(id: Int64, count: Int, blob: [UInt8], minT: Int64, maxT: Int64)]) throws {
        guard let first = chunks.first else { return }
        let sorted = chunks.sorted { $0.id < $1.id }
        let (dir, data) = GroupBlock.encode(sorted.map { ($0.id, $0.count, $0.blob) })
        try db.cachedStatement(sql: "INSERT INTO chunks(group_id, level, min_t, max_t, count, members, data) VALUES (?, ?, ?, ?, ?, ?, ?)").execute(arguments: [
            GroupBlock.group(of: first.id), level, sorted.map(\.minT).min()!, sorted.map(\.maxT).max()!, sorted.reduce(0) { $0 + $1.count }, Data(dir), Data(data),
        ])
    }

    /// The directory and (inflated) data of a row read with its `members` and `data` columns; `what`
    /// names the row in errors.
    static func groupMembers(_ row: Row, what: @autoclosure () -> String) throws -> (members: [GroupBlock.Member], data: [UInt8]) {
        do {
            let directory = try GroupBlock.directory([UInt8](row["members"] as Data? ?? Data()))
            return (directory.members, try GroupBlock.rawData([UInt8](row["data"] as Data? ?? Data()), directory))
        } catch {
            throw TwinError.corrupt(what: what(), detail: "\(error)")
        }
    }

    /// Decodes the chunks of series `ids` (every member when nil) of a chunk row read with `id`,
    /// `group_id`, `min_t`, `members` and `data`.
    static func decodeChunkRow(_ row: Row, only ids: Set<Int64>? = nil) throws -> [Int64: [(Int64, Double)]] {
        let series = ids.map { " of series \(list(Array($0)))" } ?? ""
        let what = "twin.db chunk row \(row["id"] as Int64)\(series) (series group \(row["group_id"] as Int64)) at \(TwinTime.rfc3339(row["min_t"]))"
        let (members, data) = try groupMembers(row, what: what)
        return try decodeChunkMembers(members, data, only: ids, what: what)
    }

    /// Decodes the members `ids` (every member when nil) of an inflated chunk row; `what` names the row in errors.
    static func decodeChunkMembers(_ members: [GroupBlock.Member], _ data: [UInt8], only ids: Set<Int64>?, what: String) throws -> [Int64: [(Int64, Double)]] {
        try decodeChunkColumns(members, data, only: ids, what: what).mapValues { Array(zip($0.t, $0.v)) }
    }

    /// Decodes the members `ids` (every member when nil) of an inflated chunk row as columns.
    static func decodeChunkColumns(_ members: [GroupBlock.Member], _ data: [UInt8], only ids: Set<Int64>?, what: @autoclosure () -> String) throws -> [Int64: SampleColumns] {
        var out: [Int64: SampleColumns] = [:]
        for m in members where ids?.contains(m.id) ?? true {
            do {
                var t: [Int64] = [], v: [Double] = []
                t.reserveCapacity(m.count)
                v.reserveCapacity(m.count)
                let n = try ChunkCodec.decodeMember(data[m.range], appendingTo: &t, &v)
                guard n == m.count else { throw ChunkError.corrupt("\(n) samples where the directory says \(m.count)") }
                out[m.id] = SampleColumns(t: t, v: v)
            } catch {
                throw TwinError.corrupt(what: what() + ", series \(m.id)", detail: "\(error)")
            }
        }
        return out
    }

    /// Every member of chunk rows, each series' samples appended in row order.
    static func decodeChunkRows(_ rows: [Row]) throws -> [Int64: [(Int64, Double)]] {
        var out: [Int64: [(Int64, Double)]] = [:]
        for row in rows { for (id, s) in try decodeChunkRow(row) { out[id, default: []] += s } }
        return out
    }

    /// Decodes the rollup points of series `ids` (every member when nil) of a rollup row read with `id`,
    /// `group_id`, `tier`, `members` and `data`.
    static func decodeRollupRow(_ row: Row, only ids: Set<Int64>? = nil) throws -> [Int64: [RollupPoint]] {
        let what = "twin.db rollup row \(row["id"] as Int64) (series group \(row["group_id"] as Int64), tier \(row["tier"] as Int64))"
        let (members, data) = try groupMembers(row, what: what)
        var out: [Int64: [RollupPoint]] = [:]
        for m in members where ids?.contains(m.id) ?? true {
            do { out[m.id] = try Rollup.decodeMember(data[m.range]) } catch {
                throw TwinError.corrupt(what: what + ", series \(m.id)", detail: "\(error)")
            }
        }
        return out
    }

    /// Writes (or replaces) the rollup row of `group` for `tier` and `start`; deletes it when `points`
    /// holds nothing.
    static func writeRollupRow(_ db: Database, group: Int64, tier: Int, start: Int64, _ points: [Int64: [RollupPoint]]) throws {
        let members = points.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        guard !members.isEmpty else {
            try db.cachedStatement(sql: "DELETE FROM rollups WHERE group_id = ? AND tier = ? AND start = ?").execute(arguments: [group, tier, start])
            return
        }
        var encoded: [(id: Int64, count: Int, blob: [UInt8])] = []
        for (id, p) in members { encoded.append((id, p.count, try Rollup.encodeMember(p))) }
        let (dir, data) = GroupBlock.encode(encoded)
        let minT = members.map { $0.value[0].t }.min()!, maxT = members.map { $0.value[$0.value.count - 1].t }.max()!
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO rollups(group_id, tier, start, min_t, max_t, count, members, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [group, tier, start, minT, maxT, encoded.reduce(0) { $0 + $1.count }, Data(dir), Data(data)])
    }

    /// Checks a chunk row read with every column: its directory, every member's chunk and the row's
    /// bounds. Returns the samples it holds.
    static func verifyChunkRow(_ row: Row) throws -> Int {
        let all = try decodeChunkRow(row)
        let count = all.values.reduce(0) { $0 + $1.count }
        let minT = all.values.map { $0[0].0 }.min(), maxT = all.values.map { $0[$0.count - 1].0 }.max()
        guard count == row["count"] as Int, minT == row["min_t"] as Int64, maxT == row["max_t"] as Int64 else {
            throw TwinError.corrupt(what: "twin.db chunk row \(row["id"] as Int64)", detail: "its index columns disagree with its contents")
        }
        return count
    }

    /// Checks a rollup row read with every column: its directory and every member's points.
    static func verifyRollupRow(_ row: Row) throws {
        let all = try decodeRollupRow(row)
        guard all.values.reduce(0, { $0 + $1.count }) == row["count"] as Int else {
            throw TwinError.corrupt(what: "twin.db rollup row \(row["id"] as Int64)", detail: "its point count disagrees with its contents")
        }
    }

    /// Per series, samples appended from several rows, made time-ordered and unique (rows of a group may
    /// overlap in time after a late import; normally this only checks the order).
    static func ordered(_ s: [(Int64, Double)]) -> [(Int64, Double)] {
        for i in s.indices.dropFirst() where s[i].0 <= s[i - 1].0 {
            return dedupe(s.sorted { $0.0 < $1.0 })
        }
        return s
    }
}
