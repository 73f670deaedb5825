import Foundation
import TwinCore

/// The rows of the `chunks` and `rollups` tables: one per group of series (``GroupBlock``) and head
/// window, hour or day, each holding its members' blobs.
extension TwinStore {
    /// The columns of a chunk row as ``decodeChunkRow(_:only:)`` and ``verifyChunkRow(_:)`` read them.
    static let chunkColumns = "id, group_id, min_t, max_t, count, members, data"
    /// The columns of a rollup row as ``decodeRollupRow(_:only:)`` and ``verifyRollupRow(_:)`` read them.
    static let rollupColumns = "id, group_id, tier, min_t, max_t, count, members, data"

    /// Inserts one chunk row of `level` holding `series` (id → non-empty, time-sorted samples, all of one
    /// group). Nothing when `series` is empty.
    static func insertChunkRow(_ db: any StoreStatements, level: Int, _ series: [Int64: [(Int64, Double)]]) throws {
        var encoded: [(id: Int64, count: Int, blob: [UInt8], minT: Int64, maxT: Int64)] = []
        for (id, s) in series where !s.isEmpty {
            encoded.append((id, s.count, try ChunkCodec.encodeMember(s), s[0].0, s[s.count - 1].0))
        }
        try insertChunkRow(db, level: level, encoded)
    }

    /// Inserts one chunk row of chunks already encoded as members (``ChunkCodec/encodeMember(_:)``; any
    /// order; all of one group).
    static func insertChunkRow(_ db: any StoreStatements, level: Int, _ chunks: [(id: Int64, count: Int, blob: [UInt8], minT: Int64, maxT: Int64)]) throws {
        guard let first = chunks.first else { return }
        let sorted = chunks.sorted { $0.id < $1.id }
        let (dir, data) = GroupBlock.encode(sorted.map { ($0.id, $0.count, $0.blob) })
        try db.execute("INSERT INTO chunks(group_id, level, min_t, max_t, count, members, data) VALUES (?, ?, ?, ?, ?, ?, ?)", [
            GroupBlock.group(of: first.id), level, sorted.map(\.minT).min()!, sorted.map(\.maxT).max()!, sorted.reduce(0) { $0 + $1.count }, dir, data,
        ])
    }

    /// The directory and (inflated) data of a group row's `members` and `data`; `what` names the row in errors.
    static func groupMembers(_ members: SQLValue, _ data: SQLValue, what: @autoclosure () -> String) throws -> (members: [GroupBlock.Member], data: [UInt8]) {
        do {
            let directory = try GroupBlock.directory(members.bytes ?? [])
            return (directory.members, try GroupBlock.rawData(data.bytes ?? [], directory))
        } catch {
            throw TwinError.corrupt(what: what(), detail: "\(error)")
        }
    }

    /// Decodes the chunks of series `ids` (every member when nil) of a chunk row read with ``chunkColumns``.
    static func decodeChunkRow(_ row: SQLRow, only ids: Set<Int64>? = nil) throws -> [Int64: [(Int64, Double)]] {
        let series = ids.map { " of series \(list(Array($0)))" } ?? ""
        let what = "twin.db chunk row \(row[0].int64 ?? -1)\(series) (series group \(row[1].int64 ?? -1)) at \(TwinTime.rfc3339(row[2].int64 ?? 0))"
        let (members, data) = try groupMembers(row[5], row[6], what: what)
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
    static func decodeChunkRows(_ rows: [SQLRow]) throws -> [Int64: [(Int64, Double)]] {
        var out: [Int64: [(Int64, Double)]] = [:]
        for row in rows { for (id, s) in try decodeChunkRow(row) { out[id, default: []] += s } }
        return out
    }

    /// Decodes the rollup points of series `ids` (every member when nil) of a rollup row read with ``rollupColumns``.
    static func decodeRollupRow(_ row: SQLRow, only ids: Set<Int64>? = nil) throws -> [Int64: [RollupPoint]] {
        let what = "twin.db rollup row \(row[0].int64 ?? -1) (series group \(row[1].int64 ?? -1), tier \(row[2].int64 ?? -1))"
        let (members, data) = try groupMembers(row[6], row[7], what: what)
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
    static func writeRollupRow(_ db: any StoreStatements, group: Int64, tier: Int, start: Int64, _ points: [Int64: [RollupPoint]]) throws {
        let members = points.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        guard !members.isEmpty else {
            try db.execute("DELETE FROM rollups WHERE group_id = ? AND tier = ? AND start = ?", [group, tier, start])
            return
        }
        var encoded: [(id: Int64, count: Int, blob: [UInt8])] = []
        for (id, p) in members { encoded.append((id, p.count, try Rollup.encodeMember(p))) }
        let (dir, data) = GroupBlock.encode(encoded)
        let minT = members.map { $0.value[0].t }.min()!, maxT = members.map { $0.value[$0.value.count - 1].t }.max()!
        try db.execute("""
            INSERT INTO rollups(group_id, tier, start, min_t, max_t, count, members, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(group_id, tier, start) DO UPDATE SET min_t = excluded.min_t, max_t = excluded.max_t, count = excluded.count,
                members = excluded.members, data = excluded.data
            """, [group, tier, start, minT, maxT, encoded.reduce(0) { $0 + $1.count }, dir, data])
    }

    /// Checks a chunk row read with ``chunkColumns``: its directory, every member's chunk and the row's
    /// bounds. Returns the samples it holds.
    static func verifyChunkRow(_ row: SQLRow) throws -> Int {
        let all = try decodeChunkRow(row)
        let count = all.values.reduce(0) { $0 + $1.count }
        let minT = all.values.map { $0[0].0 }.min(), maxT = all.values.map { $0[$0.count - 1].0 }.max()
        guard count == row[4].int64.map(Int.init), minT == row[2].int64, maxT == row[3].int64 else {
            throw TwinError.corrupt(what: "twin.db chunk row \(row[0].int64 ?? -1)", detail: "its index columns disagree with its contents")
        }
        return count
    }

    /// Checks a rollup row read with ``rollupColumns``: its directory and every member's points.
    static func verifyRollupRow(_ row: SQLRow) throws {
        let all = try decodeRollupRow(row)
        guard all.values.reduce(0, { $0 + $1.count }) == row[5].int64.map(Int.init) else {
            throw TwinError.corrupt(what: "twin.db rollup row \(row[0].int64 ?? -1)", detail: "its point count disagrees with its contents")
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
