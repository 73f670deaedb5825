import Foundation
import GRDB
import TwinCore

extension TwinStore {
    /// Compaction: merges each series' level-0 chunks (one per head window) that lie before `horizon`
    /// into one level-1 chunk per clock hour, re-encoded, and writes those hours' 1-hour rollup points.
    /// Then builds the 1-minute rollups of every day that ended before `horizon`. Works series by series,
    /// so memory stays bounded by one series' hour, and each series commits on its own.
    func compact(before horizon: Int64) throws {
        let hour = StoragePolicy.hour
        let candidates = try pool.write { db in
            try Int64.fetchAll(db, sql: "SELECT DISTINCT series_id FROM chunks WHERE level = 0 AND min_t < ?", arguments: [horizon])
        }
        var dirtyDays: [Int64: Set<Int64>] = [:]
        let minuteThrough = try pool.write { db in try Self.meta(db, "tier_1m_through").flatMap { Int64($0) } }
        for sid in candidates {
            try pool.write { db in
                var samples: [(Int64, Double)] = []
                var oldRows: [Int64] = []
                let level0 = try Row.fetchAll(db, sql: "SELECT id, min_t, data FROM chunks WHERE series_id = ? AND level = 0 AND min_t < ? ORDER BY min_t",
                                              arguments: [sid, horizon])
                for row in level0 {
                    samples += try Self.decodeChunk(row, series: sid)
                    oldRows.append(row["id"])
                }
                guard let first = samples.first?.0 else { return }
                let firstHour = floorDiv(first, hour) * hour
                let lastHour = floorDiv(min(samples.map(\.0).max()!, horizon - 1), hour) * hour
                // Hours compacted before (late samples of an import) are merged again.
                let level1 = try Row.fetchAll(db, sql: "SELECT id, min_t, data FROM chunks WHERE series_id = ? AND level = 1 AND min_t >= ? AND min_t < ?",
                                              arguments: [sid, firstHour, lastHour + hour])
                for row in level1 {
                    samples += try Self.decodeChunk(row, series: sid)
                    oldRows.append(row["id"])
                }
                samples.sort { $0.0 < $1.0 }
                samples = Self.dedupe(samples)
                for id in oldRows { try db.cachedStatement(sql: "DELETE FROM chunks WHERE id = ?").execute(arguments: [id]) }
                let insert = try db.cachedStatement(sql: "INSERT INTO chunks(series_id, level, min_t, max_t, count, data) VALUES (?, ?, ?, ?, ?, ?)")
                var hourPoints: [RollupPoint] = []
                var start = 0
                while start < samples.count {
                    let h = floorDiv(samples[start].0, hour) * hour
                    var end = start
                    if h < horizon {
                        while end < samples.count, samples[end].0 < h + hour { end += 1 }
                    } else {
                        end = samples.count // everything from the horizon on stays level 0
                    }
                    let part = Array(samples[start..<end])
                    try insert.execute(arguments: [sid, h < horizon ? 1 : 0, part[0].0, part[part.count - 1].0, part.count,
                                                   Data(try ChunkCodec.encode(part))])
                    if h < horizon {
                        hourPoints += Rollup.points(part, step: hour)
                        if let through = minuteThrough, h < through { dirtyDays[sid, default: []].insert(floorDiv(h, StoragePolicy.day) * StoragePolicy.day) }
                    }
                    start = end
                }
                try Self.upsertHourPoints(db, series: sid, hourPoints)
            }
        }
        try mergeOpenHour(from: horizon)
        try buildMinuteTier(before: floorDiv(horizon, StoragePolicy.day) * StoragePolicy.day, dirty: dirtyDays)
        try pool.write { db in
            let current = try Self.meta(db, "tier_1h_through").flatMap { Int64($0) } ?? .min
            if horizon > current { try Self.setMeta(db, "tier_1h_through", String(horizon)) }
        }
    }

    /// In the hour still open, a series' level-0 chunks (one per head window) are merged into one once
    /// there are three: the open hour then costs at most three chunk rows per series instead of twelve,
    /// and each sample is re-encoded about twice before its hour is compacted.
    private func mergeOpenHour(from horizon: Int64) throws {
        let crowded = try pool.write { db in
            try Int64.fetchAll(db, sql: "SELECT series_id FROM chunks WHERE level = 0 AND min_t >= ? GROUP BY series_id HAVING count(*) >= 3", arguments: [horizon])
        }
        for sid in crowded {
            try pool.write { db in
                let rows = try Row.fetchAll(db, sql: "SELECT id, min_t, data FROM chunks WHERE series_id = ? AND level = 0 AND min_t >= ? ORDER BY min_t", arguments: [sid, horizon])
                var samples: [(Int64, Double)] = []
                for row in rows { samples += try Self.decodeChunk(row, series: sid) }
                samples.sort { $0.0 < $1.0 }
                samples = Self.dedupe(samples)
                guard let first = samples.first, let last = samples.last else { return }
                for row in rows { try db.cachedStatement(sql: "DELETE FROM chunks WHERE id = ?").execute(arguments: [row["id"] as Int64]) }
                try db.cachedStatement(sql: "INSERT INTO chunks(series_id, level, min_t, max_t, count, data) VALUES (?, 0, ?, ?, ?, ?)")
                    .execute(arguments: [sid, first.0, last.0, samples.count, Data(try ChunkCodec.encode(samples))])
            }
        }
    }

    /// Writes 1-hour points into their 30-day blocks.
    private static func upsertHourPoints(_ db: Database, series: Int64, _ points: [RollupPoint]) throws {
        let block = StoragePolicy.hourBlock
        var byBlock: [Int64: [RollupPoint]] = [:]
        for p in points { byBlock[floorDiv(p.t, block) * block, default: []].append(p) }
        for (start, new) in byBlock {
            var merged = new
            if let blob = try Data.fetchOne(db, sql: "SELECT data FROM rollups WHERE series_id = ? AND tier = 2 AND start = ?", arguments: [series, start]) {
                do { merged = Rollup.merge(try Rollup.decode([UInt8](blob)), new) } catch {
                    throw TwinError.corrupt(what: "twin.db 1h rollup block of series \(series) at \(TwinTime.rfc3339(start))", detail: "\(error)")
                }
            }
            try writeRollup(db, series: series, tier: 2, start: start, merged)
        }
    }

    static func writeRollup(_ db: Database, series: Int64, tier: Int, start: Int64, _ points: [RollupPoint]) throws {
        guard let first = points.first, let last = points.last else { return }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO rollups(series_id, tier, start, min_t, max_t, count, data) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [series, tier, start, first.t, last.t, points.count, Data(try Rollup.encode(points))])
    }

    /// Builds the 1-minute blocks (one per series and day) of every day from the tier's watermark up to
    /// `end`, and rebuilds `dirty` days that received late samples.
    private func buildMinuteTier(before end: Int64, dirty: [Int64: Set<Int64>]) throws {
        let day = StoragePolicy.day
        var work: [(Int64?, Int64)] = [] // (series or all, day)
        let through = try pool.write { db -> Int64? in
            if let v = try Self.meta(db, "tier_1m_through").flatMap({ Int64($0) }) { return v }
            return try Int64.fetchOne(db, sql: "SELECT min(min_t) FROM chunks").map { floorDiv($0, day) * day }
        }
        guard let through else { return }
        var d = through
        while d < end { work.append((nil, d)); d += day }
        for (sid, days) in dirty { for d in days { work.append((sid, d)) } }
        for (only, d) in work {
            let ids = try pool.write { db in
                if let only { return [only] }
                return try Int64.fetchAll(db, sql: "SELECT DISTINCT series_id FROM chunks WHERE max_t >= ? AND min_t < ?", arguments: [d, d + day])
            }
            for sid in ids {
                try pool.write { db in
                    var samples: [(Int64, Double)] = []
                    for row in try Row.fetchAll(db, sql: "SELECT id, min_t, data FROM chunks WHERE series_id = ? AND max_t >= ? AND min_t < ? ORDER BY min_t",
                                                arguments: [sid, d, d + day]) {
                        samples += try Self.decodeChunk(row, series: sid).filter { $0.0 >= d && $0.0 < d + day }
                    }
                    samples.sort { $0.0 < $1.0 }
                    try Self.writeRollup(db, series: sid, tier: 1, start: d, Rollup.points(Self.dedupe(samples), step: StoragePolicy.minute))
                }
            }
        }
        if end > through {
            try pool.write { db in try Self.setMeta(db, "tier_1m_through", String(end)) }
        }
    }

    /// Drops data older than each tier's retention behind `latest` — but no raw sample or state a sync
    /// destination has not acknowledged (``holdForSync(_:from:)``) — and returns freed pages to the file
    /// system.
    func applyRetention(_ policy: StoragePolicy, latest: Int64) throws {
        func before(_ age: Int64) -> Int64 { latest.subtractingReportingOverflow(age).overflow ? .min : latest - age }
        try pool.write { db in
            let hold = try Int64.fetchOne(db, sql: "SELECT min(CAST(value AS INTEGER)) FROM meta WHERE key LIKE 'sync_hold:%'")
            func kept(_ cutoff: Int64) -> Int64 { hold.map { min(cutoff, $0) } ?? cutoff }
            try db.execute(sql: "DELETE FROM chunks WHERE max_t < ?", arguments: [kept(before(policy.rawRetention))])
            try db.execute(sql: "DELETE FROM rollups WHERE tier = 1 AND start + ? <= ?", arguments: [StoragePolicy.day, before(policy.minuteRetention)])
            try db.execute(sql: "DELETE FROM rollups WHERE tier = 2 AND start + ? <= ?", arguments: [StoragePolicy.hourBlock, before(policy.hourRetention)])
            let state = kept(before(policy.stateRetention))
            try db.execute(sql: "DELETE FROM versions WHERE valid_to IS NOT NULL AND valid_to < ?", arguments: [state])
            try db.execute(sql: "DELETE FROM version_blocks WHERE max_to < ?", arguments: [state])
            try db.execute(sql: "DELETE FROM events WHERE t < ?", arguments: [state])
        }
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
            let step = try pool.write { db -> RawGap? in
                guard let oldest = try Int64.fetchOne(db, sql: "SELECT min(min_t) FROM chunks") else { return nil }
                let end = floorDiv(oldest, hour) * hour + hour
                guard end <= compacted else { return nil }
                let bytes = try Int64.fetchOne(db, sql: "SELECT coalesce(sum(length(data)), 0) FROM chunks WHERE max_t < ?", arguments: [end]) ?? 0
                try db.execute(sql: "DELETE FROM chunks WHERE max_t < ?", arguments: [end])
                let minuteThrough = try Self.meta(db, "tier_1m_through").flatMap { Int64($0) } ?? .min
                let gap = RawGap(from: oldest, to: end - 1, reason: "disk cap \(cap) bytes: raw samples thinned to the \(end <= minuteThrough ? "1-minute" : "1-hour") rollups")
                // One row per run of thinned time: a span that continues the previous one extends it.
                if let previous = try Row.fetchOne(db, sql: "SELECT from_t, to_t FROM raw_gaps WHERE host = '' ORDER BY from_t DESC LIMIT 1"),
                   (previous["to_t"] as Int64) >= oldest - hour {
                    try db.execute(sql: "UPDATE raw_gaps SET to_t = ?, reason = ? WHERE host = '' AND from_t = ?", arguments: [gap.to, gap.reason, previous["from_t"] as Int64])
                } else {
                    try db.execute(sql: "INSERT OR REPLACE INTO raw_gaps(host, from_t, to_t, reason, recorded) VALUES ('', ?, ?, ?, ?)",
                                   arguments: [gap.from, gap.to, gap.reason, TwinTime.nowMillis()])
                }
                size -= bytes
                return gap
            }
            guard let step else { break }
            gaps.append(step)
        }
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
        return gaps
    }

    static func decodeChunk(_ row: Row, series: Int64) throws -> [(Int64, Double)] {
        do { return try ChunkCodec.decode([UInt8](row["data"] as Data)) } catch {
            throw TwinError.corrupt(what: "twin.db chunk \(row["id"] as Int64) of series \(series) at \(TwinTime.rfc3339(row["min_t"]))", detail: "\(error)")
        }
    }

    /// Drops samples repeating the previous one's time (time-sorted input).
    static func dedupe(_ s: [(Int64, Double)]) -> [(Int64, Double)] {
        guard s.count > 1 else { return s }
        var out = [s[0]]
        out.reserveCapacity(s.count)
        for x in s.dropFirst() where x.0 != out[out.count - 1].0 { out.append(x) }
        return out
    }

    static func meta(_ db: Database, _ key: String) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?"), arguments: [key])
    }

    static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)").execute(arguments: [key, value])
    }
}
