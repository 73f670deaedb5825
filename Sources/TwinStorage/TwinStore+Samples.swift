import Foundation
import Synchronization
import TwinCore

/// What a read found in the unsealed log.
struct LogRead: Sendable {
    var samples = 0
    var segments = 0
    var bytes = 0
    var newest: Int64?
    var oldest: Int64?
    /// Samples of the requested series, by id, in time order per series.
    var byID: [Int64: [(Int64, Double)]] = [:]
    /// The times of the tick records, in order.
    var ticks: [Int64] = []
}

extension TwinStore {
    /// Runs `body` in a read transaction and reads the head log that transaction's chunks do not cover
    /// yet, keeping samples of `ids` (all when nil) within `[from, to]`.
    ///
    /// Files: the segments after `log_sealed` are listed before the transaction starts: a segment the
    /// transaction's chunks do not cover is deleted only after a seal that commits later, so it is listed,
    /// and one created after the listing holds only ticks newer than the read. A segment sealed and deleted
    /// while it is read makes the read start over, so a reader never misses or double-counts a head window.
    /// A table: its rows are read in the same transaction, so they and the chunks are one snapshot.
    ///
    /// What is decoded stays for the next read (``LogTails``); without `cached`, in tails of their own that
    /// a pass over every series lets go at its end (``releaseBackgroundReads()``).
    func withLog<T>(ids: Set<Int64>?, from: Int64, to: Int64, cached: Bool = true, _ body: (any StoreStatements) throws -> T) throws -> (T, LogRead) {
        for _ in 0..<5 {
            let attempt: (T, LogRead)?
            switch headLog {
            case .table:
                attempt = try database.read { db -> (T, LogRead)? in
                    let value = try body(db)
                    let read = try withLogTails(cached: cached) { t -> LogRead? in
                        t.want(ids)
                        guard try t.advance(table: db) else { return nil }
                        return t.read(t.tails.keys.sorted(), ids: ids, from: from, to: to)
                    }
                    return read.map { (value, $0) }
                }
            case .files:
                let segments = logListing.segments()
                attempt = try database.read { db -> (T, LogRead)? in
                    let value = try body(db)
                    let sealed = try Self.meta(db, headLog.sealedMark).flatMap { UInt64($0) } ?? 0
                    let read = try withLogTails(cached: cached) { t -> LogRead? in
                        t.dropFiles(through: sealed)
                        t.want(ids)
                        var keys: [LogTails.Key] = []
                        for seg in segments where seg.seq > sealed {
                            let key = LogTails.Key(hub: "", segment: seg.seq)
                            // Taken out while it grows, so that its samples are appended to in place
                            // rather than copied whole (a copy left in the table would share them); put
                            // back unless its file was gone before its first read.
                            var tail = t.tails.removeValue(forKey: key) ?? LogTail(keep: t.keep)
                            var readable = true
                            defer { if readable { t.tails[key] = tail } }
                            readable = try tail.advance(seg.path)
                            guard readable else { return nil }
                            keys.append(key)
                        }
                        return t.read(keys, ids: ids, from: from, to: to)
                    }
                    return read.map { (value, $0) }
                }
            }
            if let attempt { return attempt }
        }
        throw TwinError.unavailable("the head log of \(dataDir) kept changing while being read; try again")
    }

    /// The newest sealed head-log segment, as committed now.
    func sealedSegment() throws -> UInt64 {
        try database.read { db in try Self.meta(db, headLog.sealedMark).flatMap { UInt64($0) } ?? 0 }
    }

    /// The id of series `key`, if stored.
    public func seriesID(_ key: SeriesKey) throws -> Int64? {
        let labels = TwinWriter.encodeLabels(key.labels)
        return try database.read { db in try Self.seriesID(db, metric: key.metric, labels: labels) }
    }

    /// The stored samples of one series in `[from, to]`, in time order; nil when the series is unknown.
    public func samples(_ key: SeriesKey, from: Int64, to: Int64) throws -> [(Int64, Double)]? {
        guard let id = try seriesID(key) else { return nil }
        return try samples(ids: [id], from: from, to: to)[id] ?? []
    }

    /// The id of the series `metric` with label text `labels` (of any type), if stored.
    static func seriesID(_ db: any StoreStatements, metric: String, labels: String) throws -> Int64? {
        guard let labelsID = try labelSetID(db, labels) else { return nil }
        return try db.value("SELECT s.id FROM series s JOIN metrics m ON m.id = s.metric_id WHERE s.labels_id = ? AND m.name = ? ORDER BY s.id LIMIT 1",
                            [labelsID, metric])?.int64
    }

    /// The id of the label set `labels` (label text as stored), if stored.
    static func labelSetID(_ db: any StoreStatements, _ labels: String) throws -> Int64? {
        try db.value("SELECT id FROM label_sets WHERE hash = ? AND labels = ?", [SeriesHash.of(labels: labels), labels])?.int64
    }

    /// The series with samples in `[from, to]`, at the granularity of stored rows: a series in a sealed
    /// row (head window, or rollup hour or day) that overlaps the range counts, as Prometheus counts a
    /// series whose chunk overlaps it; unsealed samples count exactly. Directories only, no sample data:
    /// what `/api/v1/series`, `/labels` and `/label/<name>/values` with `start`/`end` need.
    public func seriesWithSamples(from: Int64, to: Int64) throws -> Set<Int64> {
        let (sealed, log) = try withLog(ids: nil, from: from, to: to) { db -> Set<Int64> in
            var ids = Set<Int64>()
            let chunks = try db.rows("SELECT id, group_id, members FROM chunks WHERE max_t >= ? AND min_t <= ?", [from, to])
            let rollups = try db.rows("SELECT id, group_id, members FROM rollups WHERE max_t >= ? AND min_t <= ?", [from, to])
            for row in chunks + rollups {
                for m in try Self.directory(row[2], row: try row.integer(0), group: try row.integer(1), of: []).members { ids.insert(m.id) }
            }
            return ids
        }
        var out = sealed
        for (id, list) in log.byID where !list.isEmpty { out.insert(id) }
        out.formUnion(preview.seriesIDs(from: from, to: to))
        return out
    }

    /// Samples of many series in `[from, to]`, keyed by series id, in time order.
    public func samples(ids: [Int64], from: Int64, to: Int64) throws -> [Int64: [(Int64, Double)]] {
        try sampleColumns(ids: ids, from: from, to: to)!.mapValues { Array(zip($0.t, $0.v)) }
    }

    /// Samples of many series in `[from, to]` as columns, keyed by series id, in time order: the query
    /// engine's read, one copy from the decoded chunks into each series' columns. Nil when the sealed
    /// chunks overlapping the range hold more than `limit` samples (counted from the rows' directories,
    /// before anything is decoded).
    public func sampleColumns(ids: [Int64], from: Int64, to: Int64, limit: Int = .max) throws -> [Int64: SampleColumns]? {
        let (sealed, log) = try withLog(ids: Set(ids), from: from, to: to) { db in try self.sealedColumns(db, ids: ids, from: from, to: to, limit: limit) }
        guard var out = sealed else { return nil }
        for (id, list) in log.byID {
            // Log samples come after every sealed one of the same series, except after a crash between a
            // seal's commit and the deletion of its segment — which `log_sealed` already excludes.
            out[id, default: SampleColumns()].append(list)
        }
        preview.merge(into: &out, ids: ids, from: from, to: to)
        return out
    }

    /// Samples of `ids` in `[from, to]` from sealed chunk rows (see ``forEachSealedColumns``), keyed by
    /// series id; nil when the overlapping chunks hold more than `limit` samples.
    func sealedColumns(_ db: any StoreStatements, ids: [Int64], from: Int64, to: Int64, limit: Int = .max) throws -> [Int64: SampleColumns]? {
        var out: [Int64: SampleColumns] = [:]
        guard try forEachSealedColumns(db, ids: ids, from: from, to: to, limit: limit, { out[$0] = $1 }) else { return nil }
        return out
    }

    /// Hands `body` the samples of each of `ids` in `[from, to]` from sealed chunk rows, read group by
    /// group so a row shared by several requested series is read once; a group's columns are handed over
    /// when it is read, so a caller that reduces them (to minute points) holds one group's samples at a
    /// time. Decoded chunks are kept in ``chunkCache`` and reused (the row's data is read only when a
    /// requested series in its directory misses the cache); each series' parts in range are copied once
    /// into its columns. Without `cached`, what is read is not added to the caches (what is there is
    /// used). False, with nothing handed over, when the overlapping chunks hold more than `limit` samples.
    func forEachSealedColumns(_ db: any StoreStatements, ids: [Int64], from: Int64, to: Int64, limit: Int = .max, cached: Bool = true,
                              _ body: (Int64, SampleColumns) throws -> Void) throws -> Bool {
        // Directories first: the bound is known before anything is decoded.
        var bound = 0
        var groups: [(group: Int64, wanted: [Int64], expected: [Int], rows: [(key: ChunkCache.Key, inRow: [Int64])])] = []
        let byGroup = Dictionary(grouping: Set(ids), by: GroupBlock.group(of:))
        let rowsByGroup = try chunkRows(db, groups: Array(byGroup.keys), from: from, to: to)
        let fetched = try uncachedMembers(db, rowsByGroup.values.joined())
        for (group, wanted) in byGroup {
            var rows: [(key: ChunkCache.Key, inRow: [Int64])] = []
            var expected = [Int](repeating: 0, count: wanted.count)
            for key in rowsByGroup[group] ?? [] {
                let directory: GroupBlock.Directory
                if let hit = directoryCache.withLock({ $0[key] }) { directory = hit } else {
                    let members = try fetched[key.id] ?? db.value("SELECT members FROM chunks WHERE id = ?", [key.id]) ?? .null
                    directory = try Self.directory(members, row: key.id, group: group, of: wanted)
                    if cached {
                        directoryCache.withLock { cache in
                            if cache.count >= 16_384 { cache.removeAll() }
                            cache[key] = directory
                        }
                    }
                }
                var inRow: [Int64] = []
                for (i, id) in wanted.enumerated() {
                    if let m = directory.find(id) { bound += m.count; expected[i] += m.count; inRow.append(id) }
                }
                if !inRow.isEmpty { rows.append((key, inRow)) }
            }
            groups.append((group, wanted, expected, rows))
        }
        if bound > limit { return false }
        // A read larger than half the cache would only push out what smaller reads come back for; it
        // decodes the chunks inside the range straight into the series' columns.
        let keep = cached && bound <= chunkCache.withLock { $0.capacity } / 2
        for (group, wanted, expected, rows) in groups {
            var slot: [Int64: Int] = [:]
            var ts: [[Int64]] = [], vs: [[Double]] = []
            var unordered = [Bool](repeating: false, count: wanted.count)
            for (i, id) in wanted.enumerated() {
                slot[id] = i
                ts.append([]); vs.append([])
                ts[i].reserveCapacity(expected[i])
                vs[i].reserveCapacity(expected[i])
            }
            func add(_ i: Int, _ c: SampleColumns) {
                guard let first = c.t.first else { return }
                // Time-sorted: the part in range is one slice.
                let lo = first >= from ? 0 : SampleColumns.lowerBound(c.t, from)
                let hi = c.t.last! <= to ? c.t.count : SampleColumns.lowerBound(c.t, to &+ 1)
                guard lo < hi else { return }
                if let last = ts[i].last, c.t[lo] <= last { unordered[i] = true }
                ts[i] += c.t[lo..<hi]
                vs[i] += c.v[lo..<hi]
            }
            for (rowKey, inRow) in rows {
                var missed: Set<Int64> = []
                var hits: [(Int, SampleColumns)] = []
                chunkCache.withLock { cache in
                    for id in inRow {
                        var key = rowKey
                        key.series = id
                        if let hit = cache.get(key) { hits.append((slot[id]!, hit)) } else { missed.insert(id) }
                    }
                }
                for (i, c) in hits { add(i, c) }
                guard !missed.isEmpty, let (members, data) = try inflatedRow(db, rowKey, for: missed, cached: cached) else { continue }
                // Named only when something is damaged: building the name cost more than decoding a small chunk.
                let what = { "twin.db chunk row \(rowKey.id) of series \(Self.list(Array(missed))) (series group \(group)) at \(TwinTime.rfc3339(rowKey.minT))" }
                if !keep, rowKey.minT >= from, rowKey.maxT <= to {
                    for m in members where missed.contains(m.id) {
                        let i = slot[m.id]!, before = ts[i].count
                        do {
                            let n = try ChunkCodec.decodeMember(data[m.range], appendingTo: &ts[i], &vs[i])
                            guard n == m.count else { throw ChunkError.corrupt("\(n) samples where the directory says \(m.count)") }
                        } catch {
                            throw TwinError.corrupt(what: what() + ", series \(m.id)", detail: "\(error)")
                        }
                        if before > 0, ts[i][before] <= ts[i][before - 1] { unordered[i] = true }
                    }
                    continue
                }
                let decoded = try Self.decodeChunkColumns(members, data, only: missed, what: what())
                if keep {
                    chunkCache.withLock { cache in
                        for (id, columns) in decoded {
                            var key = rowKey
                            key.series = id
                            cache.put(key, columns)
                        }
                    }
                }
                for (id, c) in decoded { add(slot[id]!, c) }
            }
            for (i, id) in wanted.enumerated() {
                try body(id, unordered[i] ? SampleColumns(TwinStore.ordered(Array(zip(ts[i], vs[i])))) : SampleColumns(t: ts[i], v: vs[i]))
                (ts[i], vs[i]) = ([], [])
            }
        }
        return true
    }

    /// The chunk rows of `groups` overlapping `[from, to]`, by group, oldest first, without their directory
    /// blobs (read only when a parse is not cached). SQLite: a statement per group, on its index; PostgreSQL:
    /// all groups in one statement per 60,000 (a query across a fleet touches thousands of groups, and a
    /// statement is a round trip there).
    func chunkRows(_ db: any StoreStatements, groups: [Int64], from: Int64, to: Int64) throws -> [Int64: [ChunkCache.Key]] {
        let columns = "id, min_t, max_t, count, length(data)"
        func key(_ row: SQLRow, _ at: Int) throws -> ChunkCache.Key {
            ChunkCache.Key(id: try row.integer(at), minT: try row.integer(at + 1), maxT: try row.integer(at + 2), count: try row.integer(at + 3),
                           bytes: try row.integer(at + 4), series: 0)
        }
        var out: [Int64: [ChunkCache.Key]] = [:]
        guard db.dialect == .postgres, groups.count > 1 else {
            for group in groups {
                out[group] = try db.rows("SELECT \(columns) FROM chunks WHERE group_id = ? AND max_t >= ? AND min_t <= ? ORDER BY min_t", [group, from, to]).map { try key($0, 0) }
            }
            return out
        }
        for row in try db.rows("SELECT group_id, \(columns) FROM chunks WHERE max_t >= ? AND min_t <= ? AND group_id IN (VALUES", leading: [.integer(from), .integer(to)],
                               keys: groups.map { [.integer($0)] }, casts: ["bigint"], then: "ORDER BY group_id, min_t") {
            out[try row.integer(0), default: []].append(try key(row, 1))
        }
        return out
    }

    /// The directory blobs of the chunk rows `keys` whose parse is not cached, in one statement per 60,000 on
    /// PostgreSQL; empty on SQLite, whose callers read each with a statement of its own.
    func uncachedMembers(_ db: any StoreStatements, _ keys: some Sequence<ChunkCache.Key>) throws -> [Int64: SQLValue] {
        guard db.dialect == .postgres else { return [:] }
        let ids = directoryCache.withLock { cache in keys.filter { cache[$0] == nil }.map(\.id) }
        guard ids.count > 1 else { return [:] }
        var out: [Int64: SQLValue] = [:]
        for row in try db.rows("SELECT id, members FROM chunks WHERE id IN (VALUES", keys: ids.map { [.integer($0)] }, casts: ["bigint"]) {
            out[try row.integer(0)] = row[1]
        }
        return out
    }

    /// The members and inflated data of chunk row `key.id`, from ``rowDataCache`` or read and inflated
    /// (and cached when `cached`); nil when the row is gone. Damage names the row and the series `wanted` from it.
    private func inflatedRow(_ db: any StoreStatements, _ key: ChunkCache.Key, for wanted: Set<Int64>, cached: Bool) throws -> (members: [GroupBlock.Member], data: [UInt8])? {
        if let hit = rowDataCache.withLock({ $0.get(key) }) { return hit }
        guard let full = try db.rows("SELECT group_id, members, data FROM chunks WHERE id = ?", [key.id]).first else { return nil }
        let row = try Self.groupMembers(full[1], full[2], what: "twin.db chunk row \(key.id) of series \(Self.list(Array(wanted))) (series group \(full[0].int64 ?? -1)) at \(TwinTime.rfc3339(key.minT))")
        if cached { rowDataCache.withLock { $0.put(key, row.members, row.data) } }
        return row
    }

    /// The directory `members` of chunk row `row` of `group`; damage names the row and the series a
    /// reader wanted from it.
    private static func directory(_ members: SQLValue, row: Int64, group: Int64, of wanted: [Int64]) throws -> GroupBlock.Directory {
        do { return try GroupBlock.directory(members.bytes ?? []) } catch {
            throw TwinError.corrupt(what: "twin.db chunk row \(row) of series \(list(wanted)) (group \(group))", detail: "\(error)")
        }
    }

    /// Series ids for an error message: "7" or "7, 9".
    static func list(_ ids: [Int64]) -> String { ids.sorted().map(String.init).joined(separator: ", ") }

    /// Points of series `id` over `[from, to]` reduced to `step`-aligned buckets (min, max, sum, count,
    /// last), read from the coarsest tier whose resolution divides `step`: 1-hour rollups for steps of
    /// whole hours, 1-minute rollups for whole minutes, raw samples otherwise. The part of the range a
    /// tier does not cover yet (its newest hours or day) comes from the next finer source.
    public func aggregate(id: Int64, from: Int64, to: Int64, step: Int64) throws -> (points: [RollupPoint], tier: String) {
        let read = try aggregate(ids: [id], from: from, to: to, step: step)
        return (read.points[id] ?? [], read.tier)
    }

    /// Runs `body` on the tails of cached reads, or on those of background passes.
    private func withLogTails(cached: Bool, _ body: (inout LogTails) throws -> LogRead?) throws -> LogRead? {
        cached ? try logTails.withLock { try body(&$0) } : try backgroundLogTails.withLock { try body(&$0) }
    }

    /// Lets go of what passes over every series decoded of the head log (``aggregate(ids:from:to:step:cached:)``
    /// without `cached`): a pass calls this at its end. A pass still running decodes the log again.
    public func releaseBackgroundReads() {
        backgroundLogTails.withLock { $0 = LogTails(keepsAll: true) }
    }

    /// Frees what SQLite holds between bursts of work: the idle read connections are closed, and the
    /// writer's connection lets go of its unused cache pages and prepared statements. `run` calls it after
    /// each seal, beside `malloc_trim`: a run that has read and written through its first hours holds a
    /// megabyte or two more in SQLite's caches than a fresh one otherwise. The decoded chunks and inflated
    /// rows not read again since the last call go too, and the parsed row directories: the caches (4 MiB
    /// and 16 MiB at most) otherwise keep whatever was once read until they fill.
    public func releaseMemory() {
        queryReaders.closeIdle()
        pool.releaseMemory()
        chunkCache.withLock { $0.sweep() }
        rowDataCache.withLock { $0.sweep() }
        directoryCache.withLock { $0 = [:] }
    }

    /// ``aggregate(id:from:to:step:)`` of many series in one read: a row shared by series of one group
    /// (rollups, chunks) is read and inflated once, where a read per series inflates it once per series.
    /// Series without points in the range are absent. A background pass over every series (the anomaly
    /// monitor's, a rule's scan) reads without `cached`: the rows it reads would stay in the caches for
    /// good (they are emptied only when full, at 16 MiB of inflated rows and 4 MiB of decoded chunks), for
    /// reads that come back once at most; the head log it decodes stays until ``releaseBackgroundReads()``.
    /// At a one-minute step, the writer's process answers the last few minutes from what its ticks folded
    /// (``RecentMinutes``, tier "recent") where they cover the range.
    public func aggregate(ids: [Int64], from: Int64, to: Int64, step: Int64, cached: Bool = true) throws -> (points: [Int64: [RollupPoint]], tier: String) {
        guard step > 0, from <= to else { throw TwinError.badInput("aggregate needs step > 0 and from <= to") }
        let minute = StoragePolicy.minute
        guard step % minute == 0 else {
            return (try samples(ids: ids, from: from, to: to).mapValues { Rollup.points($0, step: step) }, "raw")
        }
        if step == minute, let recent = recentMinutes.points(ids: ids, from: from, to: to) { return (recent, "recent") }
        let wanted = Set(ids)
        let groups = Set(ids.map(GroupBlock.group(of:))).sorted()
        let (read, log) = try withLog(ids: wanted, from: from, to: to, cached: cached) { db -> (points: [Int64: [RollupPoint]], tiers: [String], covered: Int64) in
            var points: [Int64: [RollupPoint]] = [:]
            var tiers: [String] = []
            var covered = from // everything before this is read
            for (code, name) in [(2, "1h"), (1, "1m")] where step % (code == 2 ? StoragePolicy.hour : minute) == 0 {
                let through = try Self.meta(db, code == 2 ? "tier_1h_through" : "tier_1m_through").flatMap { Int64($0) } ?? .min
                guard through > covered else { continue }
                let end = min(through, to == .max ? .max : to + 1)
                let span = code == 2 ? StoragePolicy.hourBlock : StoragePolicy.day
                for group in groups {
                    for row in try db.rows("SELECT \(Self.rollupColumns) FROM rollups WHERE group_id = ? AND tier = ? AND start > ? AND start < ? ORDER BY start",
                                           [group, code, covered.subtractingReportingOverflow(span).overflow ? Int64.min : covered - span, end]) {
                        for (id, list) in try Self.decodeRollupRow(row, only: wanted) {
                            points[id, default: []] += list.filter { $0.t >= covered && $0.t < end }
                        }
                    }
                }
                tiers.append(name)
                covered = end
            }
            if covered <= to {
                // Folded group by group: the samples of a long range are many times the size of their minutes.
                _ = try self.forEachSealedColumns(db, ids: ids, from: covered, to: to, cached: cached) { id, c in
                    if !c.t.isEmpty { points[id, default: []] += Rollup.points(zip(c.t, c.v), step: minute) }
                }
                tiers.append("raw")
            }
            return (points, tiers, covered)
        }
        var points = read.points
        if read.covered <= to {
            var tail: [Int64: SampleColumns] = [:]
            for (id, list) in log.byID { tail[id] = SampleColumns(list) }
            preview.merge(into: &tail, ids: ids, from: read.covered, to: to)
            for (id, columns) in tail {
                points[id, default: []] += Rollup.points(zip(columns.t, columns.v).filter { $0.0 >= read.covered }, step: minute)
            }
        }
        let coarse = points.compactMapValues { list -> [RollupPoint]? in
            let c = Rollup.coarsen(list.sorted { $0.t < $1.t }, step: step)
            return c.isEmpty ? nil : c
        }
        return (coarse, read.tiers.joined(separator: "+"))
    }
}
