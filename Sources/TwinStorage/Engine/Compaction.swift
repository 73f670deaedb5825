import Foundation
import TwinCore

extension TwinStore {
    /// Compaction: merges each group's level-0 chunk rows (one per head window) that lie before `horizon`
    /// into one level-1 row per clock hour, every series re-encoded, and writes those hours' 1-hour rollup
    /// points. Then builds the 1-minute rollups of every day that ended before `horizon`. Works group by
    /// group (``GroupBlock``), so memory stays bounded by one group's hour, and each group commits on its own.
    func compact(before horizon: Int64) throws {
        let hour = StoragePolicy.hour
        let candidates = try database.write { db in
            try db.rows("SELECT DISTINCT group_id FROM chunks WHERE level = 0 AND min_t < ?", [horizon]).map { try $0.integer(0) }
        }
        var dirtyDays: Set<[Int64]> = [] // [group, day]
        let minuteThrough = try database.write { db in try Self.meta(db, "tier_1m_through").flatMap { Int64($0) } }
        for group in candidates {
            try database.write { db in
                try Self.takeMaintenanceTurn(db)
                var series: [Int64: [(Int64, Double)]] = [:]
                var oldRows: [Int64] = []
                func take(_ rows: [SQLRow]) throws {
                    series.merge(try Self.decodeChunkRows(rows), uniquingKeysWith: +)
                    oldRows += try rows.map { try $0.integer(0) }
                }
                try take(db.rows("SELECT \(Self.chunkColumns) FROM chunks WHERE group_id = ? AND level = 0 AND min_t < ? ORDER BY min_t", [group, horizon]))
                guard let first = series.values.map({ $0[0].0 }).min() else { return }
                let newest = series.values.map { $0.map(\.0).max()! }.max()!
                let firstHour = floorDiv(first, hour) * hour
                let lastHour = floorDiv(min(newest, horizon - 1), hour) * hour
                // Hours compacted before (late samples of an import) are merged again.
                try take(db.rows("SELECT \(Self.chunkColumns) FROM chunks WHERE group_id = ? AND level = 1 AND min_t >= ? AND min_t < ?", [group, firstHour, lastHour + hour]))
                for id in oldRows { try db.execute("DELETE FROM chunks WHERE id = ?", [id]) }
                var hours: [Int64: [Int64: [(Int64, Double)]]] = [:] // hour → series → samples
                var rest: [Int64: [(Int64, Double)]] = [:] // from the horizon on: stays level 0
                var hourPoints: [Int64: [RollupPoint]] = [:]
                for (id, list) in series {
                    let samples = Self.ordered(list)
                    var start = 0
                    while start < samples.count {
                        let h = floorDiv(samples[start].0, hour) * hour
                        guard h < horizon else {
                            rest[id] = Array(samples[start...])
                            break
                        }
                        var end = start
                        while end < samples.count, samples[end].0 < h + hour { end += 1 }
                        let part = Array(samples[start..<end])
                        hours[h, default: [:]][id] = part
                        hourPoints[id, default: []] += Rollup.points(part, step: hour)
                        if let through = minuteThrough, h < through { dirtyDays.insert([group, floorDiv(h, StoragePolicy.day) * StoragePolicy.day]) }
                        start = end
                    }
                }
                for (_, members) in hours.sorted(by: { $0.key < $1.key }) { try Self.insertChunkRow(db, level: 1, members) }
                try Self.insertChunkRow(db, level: 0, rest)
                try Self.upsertHourPoints(db, group: group, hourPoints)
            }
        }
        try mergeOpenHour(from: horizon)
        try buildMinuteTier(before: floorDiv(horizon, StoragePolicy.day) * StoragePolicy.day, dirty: dirtyDays)
        try database.write { db in
            let current = try Self.meta(db, "tier_1h_through").flatMap { Int64($0) } ?? .min
            if horizon > current { try Self.setMeta(db, "tier_1h_through", String(horizon)) }
        }
    }

    /// In the hour still open, a group's level-0 rows (one per head window) are merged into one once
    /// there are three: the open hour then costs at most three chunk rows per group instead of twelve,
    /// and each sample is re-encoded about twice before its hour is compacted.
    private func mergeOpenHour(from horizon: Int64) throws {
        let crowded = try database.write { db in
            try db.rows("SELECT group_id FROM chunks WHERE level = 0 AND min_t >= ? GROUP BY group_id HAVING count(*) >= 3", [horizon]).map { try $0.integer(0) }
        }
        for group in crowded {
            try database.write { db in
                try Self.takeMaintenanceTurn(db)
                let rows = try db.rows("SELECT \(Self.chunkColumns) FROM chunks WHERE group_id = ? AND level = 0 AND min_t >= ? ORDER BY min_t", [group, horizon])
                let series = try Self.decodeChunkRows(rows)
                for row in rows { try db.execute("DELETE FROM chunks WHERE id = ?", [row[0]]) }
                try Self.insertChunkRow(db, level: 0, series.mapValues(Self.ordered))
            }
        }
    }

    /// Writes 1-hour points (by series, all of `group`) into the group's day rows of the 1-hour tier.
    private static func upsertHourPoints(_ db: any StoreStatements, group: Int64, _ points: [Int64: [RollupPoint]]) throws {
        let block = StoragePolicy.hourBlock
        var byBlock: [Int64: [Int64: [RollupPoint]]] = [:]
        for (id, list) in points { for p in list { byBlock[floorDiv(p.t, block) * block, default: [:]][id, default: []].append(p) } }
        for (start, new) in byBlock {
            var merged: [Int64: [RollupPoint]] = [:]
            if let row = try db.rows("SELECT \(rollupColumns) FROM rollups WHERE group_id = ? AND tier = 2 AND start = ?", [group, start]).first {
                merged = try decodeRollupRow(row)
            }
            for (id, p) in new { merged[id] = Rollup.merge(merged[id] ?? [], p) }
            try writeRollupRow(db, group: group, tier: 2, start: start, merged)
        }
    }

    /// Builds the 1-minute rows (one per group and day) of every day from the tier's watermark up to
    /// `end`, and rebuilds `dirty` ([group, day]) rows that received late samples.
    private func buildMinuteTier(before end: Int64, dirty: Set<[Int64]>) throws {
        let day = StoragePolicy.day
        var work: [(Int64?, Int64)] = [] // (group or all, day)
        let through = try database.write { db -> Int64? in
            if let v = try Self.meta(db, "tier_1m_through").flatMap({ Int64($0) }) { return v }
            return try db.value("SELECT min(min_t) FROM chunks")?.int64.map { floorDiv($0, day) * day }
        }
        guard let through else { return }
        var d = through
        while d < end { work.append((nil, d)); d += day }
        for gd in dirty.sorted(by: { $0.lexicographicallyPrecedes($1) }) { work.append((gd[0], gd[1])) }
        for (only, d) in work {
            let groups = try database.write { db in
                if let only { return [only] }
                return try db.rows("SELECT DISTINCT group_id FROM chunks WHERE max_t >= ? AND min_t < ?", [d, d + day]).map { try $0.integer(0) }
            }
            for group in groups {
                try database.write { db in
                    var series: [Int64: [(Int64, Double)]] = [:]
                    for row in try db.rows("SELECT \(Self.chunkColumns) FROM chunks WHERE group_id = ? AND max_t >= ? AND min_t < ? ORDER BY min_t", [group, d, d + day]) {
                        for (id, s) in try Self.decodeChunkRow(row) { series[id, default: []] += s.filter { $0.0 >= d && $0.0 < d + day } }
                    }
                    try Self.writeRollupRow(db, group: group, tier: 1, start: d, series.mapValues { Rollup.points(Self.ordered($0), step: StoragePolicy.minute) })
                }
            }
        }
        if end > through {
            try database.write { db in try Self.setMeta(db, "tier_1m_through", String(end)) }
        }
    }

    /// Drops data older than each tier's retention behind `latest` — but no raw sample or state a sync
    /// destination has not acknowledged (``holdForSync(_:from:)``) — and returns freed pages to the file
    /// system.
    func applyRetention(_ policy: StoragePolicy, latest: Int64) throws {
        func before(_ age: Int64) -> Int64 { latest.subtractingReportingOverflow(age).overflow ? .min : latest - age }
        try database.write { db in
            let hold = try db.value("SELECT min(CAST(value AS BIGINT)) FROM meta WHERE key LIKE 'sync_hold:%'")?.int64
            func kept(_ cutoff: Int64) -> Int64 { hold.map { min(cutoff, $0) } ?? cutoff }
            let state = kept(before(policy.stateRetention))
            // Whole partitions first (PostgreSQL), then what is left row by row.
            _ = try dropExpiredPartitions(db, cutoffs: ["chunks": kept(before(policy.rawRetention)), "version_blocks": state, "events": state])
            try db.execute("DELETE FROM chunks WHERE max_t < ?", [kept(before(policy.rawRetention))])
            try db.execute("DELETE FROM rollups WHERE tier = 1 AND start + ? <= ?", [StoragePolicy.day, before(policy.minuteRetention)])
            try db.execute("DELETE FROM rollups WHERE tier = 2 AND start + ? <= ?", [StoragePolicy.hourBlock, before(policy.hourRetention)])
            try db.execute("DELETE FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?", [state])
            try db.execute("DELETE FROM version_blocks WHERE max_to < ?", [state])
            try db.execute("DELETE FROM events WHERE t < ?", [state])
        }
        try reclaimSpace()
    }

    /// Hands pages freed by deletes back to the file system (SQLite; PostgreSQL's autovacuum does its own).
    func reclaimSpace() throws {
        guard database.dialect == .sqlite else { return }
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
    }

    /// The bytes of the data directory: the database, its WAL and the head log.
    public func directoryBytes() -> Int64 {
        var total: Int64 = 0
        for name in ["twin.db", "twin.db-wal"] {
            total += ((try? FileManager.default.attributesOfItem(atPath: dataDir + "/" + name))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        for seg in LogSegment.list(dataDir) {
            total += ((try? FileManager.default.attributesOfItem(atPath: seg.path))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return total
    }

    /// Above `cap` bytes, deletes the oldest raw samples an hour at a time — only compacted hours, which
    /// the 1-hour rollups cover (and the 1-minute ones, for days before the minute tier's watermark) —
    /// until the directory is back under 90 % of the cap, recording each span thinned in `raw_gaps`.
    /// State history is never thinned; the head's recent hour never is.
    func thin(to cap: Int64, latest: Int64) throws -> [RawGap] {
        var size = directoryBytes()
        guard size > cap else { return [] }
        let hour = StoragePolicy.hour
        let compacted = floorDiv(latest, hour) * hour // hours before it are compacted, with their rollups
        var gaps: [RawGap] = []
        while size > cap / 10 * 9 {
            let step = try database.write { db -> RawGap? in
                guard let oldest = try db.value("SELECT min(min_t) FROM chunks")?.int64 else { return nil }
                let end = floorDiv(oldest, hour) * hour + hour
                guard end <= compacted else { return nil }
                let bytes = try db.value("SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE max_t < ?", [end])?.int64 ?? 0
                try db.execute("DELETE FROM chunks WHERE max_t < ?", [end])
                let minuteThrough = try Self.meta(db, "tier_1m_through").flatMap { Int64($0) } ?? .min
                let gap = RawGap(from: oldest, to: end - 1, reason: "disk cap \(cap) bytes: raw samples thinned to the \(end <= minuteThrough ? "1-minute" : "1-hour") rollups")
                // One row per run of thinned time: a span that continues the previous one extends it.
                if let previous = try db.rows("SELECT from_t, to_t FROM raw_gaps WHERE host = '' ORDER BY from_t DESC LIMIT 1").first,
                   try previous.integer(1) >= oldest - hour {
                    try db.execute("UPDATE raw_gaps SET to_t = ?, reason = ? WHERE host = '' AND from_t = ?", [gap.to, gap.reason, previous[0]])
                } else {
                    try db.execute("""
                        INSERT INTO raw_gaps(host, from_t, to_t, reason, recorded) VALUES ('', ?, ?, ?, ?)
                        ON CONFLICT(host, from_t) DO UPDATE SET to_t = excluded.to_t, reason = excluded.reason, recorded = excluded.recorded
                        """, [gap.from, gap.to, gap.reason, TwinTime.nowMillis()])
                }
                size -= bytes
                return gap
            }
            guard let step else { break }
            gaps.append(step)
        }
        try reclaimSpace()
        return gaps
    }

    /// Drops samples repeating the previous one's time (time-sorted input).
    static func dedupe(_ s: [(Int64, Double)]) -> [(Int64, Double)] {
        guard s.count > 1 else { return s }
        var out = [s[0]]
        out.reserveCapacity(s.count)
        for x in s.dropFirst() where x.0 != out[out.count - 1].0 { out.append(x) }
        return out
    }
}
