import Foundation
import GRDB
import Testing
import TwinCore
@testable import TwinStorage
@testable import TwinQuery

/// The storage engine: bulk ingest, sealing, compaction into hours, rollup tiers, retention, log recovery.
@Suite struct EngineTests {
    static let t0: Int64 = 1_800_000_000_000 - 1_800_000_000_000 % StoragePolicy.day // a day boundary

    /// A writer on a fresh store, opened for bulk ingest.
    func openWriter(_ policy: StoragePolicy = StoragePolicy()) throws -> (String, TwinStore, TwinWriter) {
        let dir = try temporaryDirectory()
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: policy)
        try w.open()
        return (dir, store, w)
    }

    /// A writer on a fresh store on `engine`, opened for bulk ingest; the caller removes the store.
    func openWriter(_ engine: StoreEngine, _ policy: StoragePolicy = StoragePolicy()) throws -> (EngineStore, TwinStore, TwinWriter) {
        let place = try EngineStore(engine)
        let store = try place.open()
        let w = TwinWriter(store: store, policy: policy)
        try w.open()
        return (place, store, w)
    }

    func value(_ series: Int, _ i: Int) -> Double { Double((i * (series + 3)) % 1000) / 4 + Double(series) }

    /// Two and a half days of three series at 10 s, ingested in batches in time order, must come back
    /// sample for sample, compacted into hourly chunks with both rollup tiers built, and every tier's
    /// aggregate must equal the same aggregate computed from the raw samples.
    @Test(arguments: StoreEngine.available) func ingestCompactRollUpAndReadBack(_ engine: StoreEngine) throws {
        let (place, store, w) = try openWriter(engine)
        defer { place.remove(stopping: w) }
        w.maxHeadSamples = 5_000
        let ids = try (0..<3).map { try w.seriesID(for: SeriesKey("m", Labels(["s": "\($0)"])), type: .gauge) }
        let n = 21_600 // 2.5 days at 10 s
        var batch: [(Int64, Int64, Double)] = []
        for i in 0..<n {
            for (s, id) in ids.enumerated() { batch.append((id, Self.t0 + Int64(i) * 10_000, value(s, i))) }
            if batch.count >= 999 { #expect(try w.append(batch: batch).accepted == batch.count); batch = [] }
        }
        try w.append(batch: batch)
        try w.flush()
        let raw = try #require(try store.samples(ids: [ids[1]], from: .min, to: .max)[ids[1]])
        #expect(raw.count == n)
        #expect(raw.map(\.1) == (0..<n).map { value(1, $0) })
        let hours = try EngineStore.integer(store, "SELECT count(*) FROM chunks WHERE group_id = ? AND level = 1", [GroupBlock.group(of: ids[1])])
        #expect(hours == 59, "60 hours of data: the first 59 compacted, the newest (open) hour stays level 0")
        let open = try EngineStore.integer(store, "SELECT count(*) FROM chunks WHERE group_id = ? AND level = 0", [GroupBlock.group(of: ids[1])])
        #expect((1...2).contains(open ?? 0), "the open hour's head windows are merged once there are three")
        let end = Self.t0 + Int64(n) * 10_000
        for step in [StoragePolicy.hour, 6 * StoragePolicy.hour, StoragePolicy.minute, 15 * StoragePolicy.minute] {
            let (points, tier) = try store.aggregate(id: ids[1], from: Self.t0, to: end, step: step)
            let expected = Rollup.points(raw, step: step)
            #expect(points.count == expected.count, "step \(step)")
            for (a, b) in zip(points, expected) {
                #expect(a.t == b.t && a.min == b.min && a.max == b.max && a.count == b.count && a.last == b.last)
                #expect(abs(a.sum - b.sum) <= 1e-9 * abs(b.sum))
            }
            #expect(tier.hasPrefix(step % StoragePolicy.hour == 0 ? "1h" : "1m"), "step \(step) read \(tier)")
            // The three series in one read: the same points, series by series.
            let together = try store.aggregate(ids: ids, from: Self.t0 + 1_234_567, to: end, step: step)
            let alone = try ids.map { try store.aggregate(id: $0, from: Self.t0 + 1_234_567, to: end, step: step) }
            #expect(together.tier == alone[0].tier)
            #expect(zip(ids, alone).allSatisfy { id, read in together.points[id] == read.points && !read.points.isEmpty })
        }
        // Out-of-order and duplicate samples are refused and counted, the rest accepted.
        let r = try w.append(batch: [(ids[0], Self.t0, 1), (ids[0], end + 5_000, 2), (ids[0], end + 5_000, 3)])
        #expect(r.accepted == 1 && r.rejected == 2 && r.firstRejection?.contains("not after") == true)
        try w.finish(now: end + 10_000)
    }

    /// A read across several series groups (150 series: three groups of 64) and several sealed windows
    /// returns every series' samples exactly, also read again from the caches, and a window in the middle.
    @Test(arguments: StoreEngine.available) func readsAcrossGroupsAndWindows(_ engine: StoreEngine) throws {
        let (place, store, w) = try openWriter(engine, .testing)
        defer { place.remove(stopping: w) }
        let ids = try w.seriesIDs(for: (0..<150).map { (SeriesKey("m", Labels(["s": "\($0)"])), .gauge) })
        #expect(Set(ids.map(GroupBlock.group(of:))).count >= 3)
        let step: Int64 = 120_000 // 60 samples over two hours
        w.maxHeadSamples = 3_000 // and a cut every 20 of them
        for i in 0..<60 { try w.append(batch: ids.enumerated().map { s, id in (id, Self.t0 + Int64(i) * step, value(s, i)) }) }
        try w.flush()
        #expect(try EngineStore.integer(store, "SELECT count(*) FROM chunks") ?? 0 >= 6, "at least two rows per group")
        for _ in 0..<2 {
            let read = try store.samples(ids: ids, from: .min, to: .max)
            #expect(ids.enumerated().allSatisfy { s, id in read[id]?.map(\.1) == (0..<60).map { value(s, $0) } })
        }
        let middle = try store.samples(ids: ids, from: Self.t0 + 15 * step, to: Self.t0 + 44 * step)
        #expect(ids.allSatisfy { middle[$0]?.map(\.0) == (15..<45).map { Self.t0 + Int64($0) * step } })
        // Minutes of every series in one read are each series' minutes read alone.
        for (from, to) in [(Self.t0, Self.t0 + 60 * step), (Self.t0 + 15 * step + 7, Self.t0 + 44 * step)] {
            let together = try store.aggregate(ids: ids, from: from, to: to, step: StoragePolicy.minute)
            #expect(together.points.count == ids.count)
            #expect(try ids.allSatisfy { id in together.points[id] == (try store.aggregate(id: id, from: from, to: to, step: StoragePolicy.minute)).points })
        }
        try w.finish(now: Self.t0 + 100 * step)
    }

    /// Ticks over many head windows inside one hour: the open hour keeps at most three chunks per series,
    /// every sample once.
    @Test(arguments: StoreEngine.available) func openHourWindowsAreMerged(_ engine: StoreEngine) throws {
        let place = try EngineStore(engine)
        defer { place.remove() }
        let store = try place.open()
        let w = TwinWriter(store: store, policy: .testing)
        try w.begin(now: Self.t0, interval: 1000)
        for i in 0..<170 {
            var o = Observation(timestamp: Self.t0 + 600_000 + Int64(i) * 1000)
            o.add("m", .empty, Double(i % 9))
            try w.commit(o)
        }
        try w.flush()
        let chunks = try EngineStore.integer(store, "SELECT count(*) FROM chunks WHERE level = 0") ?? 0
        #expect((1...3).contains(chunks), "\(chunks) level-0 chunks for 9 head windows")
        #expect(try store.samples(SeriesKey("m"), from: 0, to: .max)?.map(\.1) == (0..<170).map { Double($0 % 9) })
        try w.finish(now: Self.t0 + 800_000)
    }

    /// The writer's files copied mid-run are what a `kill -9` leaves: a new writer recovers every
    /// committed sample from the log, once — also when a sealed segment was not deleted yet.
    @Test func recoveryReplaysTheLogOnce() throws {
        let (dir, store, w) = try openWriter(.testing)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try w.seriesID(for: SeriesKey("x"), type: .counter)
        for i in 0..<95 { try w.append(batch: [(id, Self.t0 + Int64(i) * 1000, Double(i))]) }
        let sealedSegment = try #require(LogSegment.list(dir).last)
        let sealedBytes = try Data(contentsOf: URL(fileURLWithPath: sealedSegment.path))
        try w.flush() // sealed into chunks, segment deleted
        #expect(!FileManager.default.fileExists(atPath: sealedSegment.path))
        for i in 95..<130 { try w.append(batch: [(id, Self.t0 + Int64(i) * 1000, Double(i))]) }
        let copy = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try store.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.full) }
        for name in ["twin.db", "wal"] { try FileManager.default.copyItem(atPath: dir + "/" + name, toPath: copy + "/" + name) }
        // As if the crash came between a seal's commit and the deletion of its segment.
        try sealedBytes.write(to: URL(fileURLWithPath: LogSegment.path(copy, sealedSegment.seq)))
        try w.finish(now: Self.t0 + 200_000)
        let crashed = try TwinStore.open(dataDir: copy)
        #expect(try crashed.samples(SeriesKey("x"), from: .min, to: .max)?.map(\.1) == (0..<130).map(Double.init), "readers see the log before recovery")
        let again = TwinWriter(store: crashed, policy: .testing)
        try again.open()
        try again.finish(now: Self.t0 + 300_000)
        #expect(try crashed.samples(SeriesKey("x"), from: .min, to: .max)?.map(\.1) == (0..<130).map(Double.init))
        #expect(LogSegment.list(copy).isEmpty, "recovered segments are sealed and removed")
    }

    /// The size of the SQLite WAL file of the store in `dir`.
    func walBytes(_ dir: String) throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: dir + "/twin.db-wal")[.size] as? Int) }

    /// The sealer's checkpoint goes through a connection of its own and copies the whole WAL, so the
    /// writer's next commit starts the WAL over (cut back to 128 KiB) instead of adding to it; without it
    /// the WAL would still hold the big commit (the writer checkpoints on its own only past 1,024 pages).
    @Test func theCheckpointAsideCopiesTheWholeWAL() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        try store.database.write { db in try TwinStore.setMeta(db, "big", String(repeating: "x", count: 600_000)) }
        #expect(try walBytes(dir) > 600_000)
        try store.database.write { db in try TwinStore.setMeta(db, "small", "1") }
        let without = try walBytes(dir)
        #expect(without > 600_000, "no checkpoint yet: the WAL grows")
        store.checkpointAside()
        try store.database.write { db in try TwinStore.setMeta(db, "small", "2") }
        #expect(try walBytes(dir) <= 131_072, "the WAL started over after the checkpoint aside")
        #expect(try store.database.read { db in try db.value("SELECT value FROM meta WHERE key = 'small'", [])?.string } == "2")
    }

    /// An idle sealer copies a WAL grown past 512 KiB within a few seconds, without any job: the writer's
    /// next small commit then finds the WAL started over.
    @Test func anIdleSealerCheckpointsAGrownWAL() throws {
        let (dir, store, w) = try openWriter()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store.database.write { db in try TwinStore.setMeta(db, "big", String(repeating: "x", count: 600_000)) }
        #expect(try walBytes(dir) > 600_000)
        var startedOver = false
        for i in 0..<60 where !startedOver { // up to 30 s; the sealer looks every 5 s
            usleep(500_000)
            try store.database.write { db in try TwinStore.setMeta(db, "small", String(i)) }
            startedOver = try walBytes(dir) <= 131_072
        }
        #expect(startedOver, "the WAL was copied while the sealer had no job")
        #expect(try store.database.read { db in try db.value("SELECT value FROM meta WHERE key = 'wal_started_over'", [])?.string } != nil,
                "the sealer wrote a row to start the WAL over on its own thread")
        try w.finish(now: Self.t0)
    }

    /// A damaged segment that is not the newest stops the writer with an error naming the file.
    /// The query path's kept listing of the log directory: a segment created right after a listing, or after
    /// the listing was kept, is in the next one; a removed one leaves it. (Whether a change within the file
    /// system's timestamp granularity is caught depends on the kernel: 6.x stamps a directory whose time was
    /// just read with a fine-grained time, so this machine cannot show that race.)
    @Test func theKeptSegmentListingSeesEveryNewSegment() throws {
        let dir = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: LogSegment.directory(dir), withIntermediateDirectories: true)
        let listing = LogSegment.Listing(dataDir: dir)
        #expect(listing.segments().isEmpty)
        for seq in UInt64(1)...40 {
            try Data(LogSegment.header(seq)).write(to: URL(fileURLWithPath: LogSegment.path(dir, seq)))
            #expect(listing.segments().map(\.seq) == Array(1...seq), "segment \(seq) created right after a listing")
            if seq % 10 == 0 { usleep(30_000) } // now and then the listing is old enough to be kept
            #expect(listing.segments().map(\.seq) == Array(1...seq))
        }
        unlink(LogSegment.path(dir, 1))
        #expect(listing.segments().first?.seq == 2, "a removed segment leaves the listing")
    }

    @Test func damagedOlderSegmentIsNamed() throws {
        let (dir, store, w) = try openWriter(.testing)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try w.seriesID(for: SeriesKey("x"), type: .gauge)
        for i in 0..<10 { try w.append(batch: [(id, Self.t0 + Int64(i) * 1000, Double(i))]) }
        let copy = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: dir + "/twin.db", toPath: copy + "/twin.db")
        try FileManager.default.createDirectory(atPath: copy + "/wal", withIntermediateDirectories: true)
        let seg = try #require(LogSegment.list(dir).last)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: seg.path))
        bytes[bytes.count - 5] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: LogSegment.path(copy, seg.seq)))
        try Data(LogSegment.header(seg.seq + 1)).write(to: URL(fileURLWithPath: LogSegment.path(copy, seg.seq + 1)))
        try w.finish(now: Self.t0 + 20_000)
        let broken = TwinWriter(store: try TwinStore.open(dataDir: copy))
        #expect { try broken.open() } throws: { "\($0)".contains(LogSegment.path(copy, seg.seq)) && "\($0)".contains("repair") }
        _ = store
    }

    /// Retention keeps each tier for its own span behind the newest sample; rollups outlive raw data.
    @Test(arguments: StoreEngine.available) func retentionDropsOldRawButKeepsRollups(_ engine: StoreEngine) throws {
        var p = StoragePolicy()
        p.rawRetention = 2 * StoragePolicy.hour
        let (place, store, w) = try openWriter(engine, p)
        defer { place.remove(stopping: w) }
        let id = try w.seriesID(for: SeriesKey("g"), type: .gauge)
        var batch: [(Int64, Int64, Double)] = []
        for i in 0..<(6 * 360) { batch.append((id, Self.t0 + Int64(i) * 10_000, Double(i % 17))) }
        try w.append(batch: batch)
        try w.flush()
        let raw = try #require(try store.samples(ids: [id], from: .min, to: .max)[id])
        #expect(raw.first!.0 >= Self.t0 + 3 * StoragePolicy.hour, "raw older than 2 h behind the newest sample is gone")
        let (hours, tier) = try store.aggregate(id: id, from: Self.t0, to: Self.t0 + 6 * StoragePolicy.hour, step: StoragePolicy.hour)
        #expect(hours.count == 6 && hours[0].t == Self.t0 && hours[0].count == 360, "1h rollups still cover the dropped hours (\(tier))")
        try w.finish(now: Self.t0 + 7 * StoragePolicy.hour)
    }

    /// What a sync destination has not acknowledged is held from retention; releasing the hold lets it go.
    @Test(arguments: StoreEngine.available) func retentionKeepsWhatASyncDestinationHolds(_ engine: StoreEngine) throws {
        var p = StoragePolicy()
        p.rawRetention = 2 * StoragePolicy.hour
        let (place, store, w) = try openWriter(engine, p)
        defer { place.remove(stopping: w) }
        let id = try w.seriesID(for: SeriesKey("g"), type: .gauge)
        try store.holdForSync("hub:1", from: Self.t0 + StoragePolicy.hour)
        try store.holdForSync("hub:2", from: Self.t0 + 2 * StoragePolicy.hour)
        var batch: [(Int64, Int64, Double)] = []
        for i in 0..<(6 * 360) { batch.append((id, Self.t0 + Int64(i) * 10_000, Double(i % 17))) }
        try w.append(batch: batch)
        try w.flush()
        let held = try #require(try store.samples(ids: [id], from: .min, to: .max)[id])
        #expect(held.first!.0 <= Self.t0 + StoragePolicy.hour && held.first!.0 >= Self.t0, "the oldest hold (hub:1 from the first hour) keeps its raw samples: \(held.first!.0 - Self.t0)")
        try store.releaseSyncHolds(except: ["hub:2"])
        try store.applyRetention(p, latest: Self.t0 + 6 * StoragePolicy.hour)
        #expect(try store.samples(ids: [id], from: .min, to: .max)[id]!.first!.0 >= Self.t0 + 2 * StoragePolicy.hour, "hub:2 holds from the third hour")
        try store.holdForSync("hub:2", from: nil)
        try store.applyRetention(p, latest: Self.t0 + 6 * StoragePolicy.hour)
        #expect(try store.samples(ids: [id], from: .min, to: .max)[id]!.first!.0 >= Self.t0 + 4 * StoragePolicy.hour)
        try w.finish(now: Self.t0 + 7 * StoragePolicy.hour)
    }

    /// Above its disk cap a store thins its oldest raw samples to the rollups an hour at a time, records
    /// the span as a gap, keeps the rollups' answers and never touches state history or the recent hour.
    @Test func aDiskCapThinsOldRawSamplesAndRecordsTheGap() throws {
        let (dir, store, w) = try openWriter()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = try (0..<40).map { try w.seriesID(for: SeriesKey("m", Labels(["s": "\($0)"])), type: .gauge) }
        var batch: [(Int64, Int64, Double)] = []
        for (k, id) in ids.enumerated() {
            for i in 0..<(6 * 3600) { batch.append((id, Self.t0 + Int64(i) * 1000, Double((i * 7919 + k * 104_729) % 10_007))) } // incompressible-ish
        }
        batch.sort { ($0.1, $0.0) < ($1.1, $1.0) }
        for part in stride(from: 0, to: batch.count, by: 100_000) { try w.append(batch: Array(batch[part..<min(part + 100_000, batch.count)])) }
        try w.flush()
        let latest = Self.t0 + 6 * StoragePolicy.hour - 1000
        try store.compact(before: Self.t0 + 6 * StoragePolicy.hour)
        let before = store.directoryBytes()
        #expect(try store.thin(to: before * 2, latest: latest).isEmpty, "under the cap nothing is thinned")
        let gaps = try store.thin(to: before / 2, latest: latest)
        #expect(!gaps.isEmpty && gaps[0].from == Self.t0 && gaps[0].reason.contains("disk cap"), "\(gaps)")
        let recorded = try store.rawGaps()
        #expect(recorded.count == 1 && recorded[0].from == Self.t0 && recorded[0].to == gaps.last!.to, "one row for the run: \(recorded)")
        let raw = try #require(try store.samples(ids: [ids[0]], from: .min, to: .max)[ids[0]])
        #expect(raw.first!.0 == recorded[0].to + 1, "raw samples start right after the gap")
        #expect(raw.last!.0 == latest, "the newest hours are kept")
        let (hours, _) = try store.aggregate(id: ids[0], from: Self.t0, to: latest, step: StoragePolicy.hour)
        #expect(hours.count == 6 && hours[0].count == 3600, "the 1-hour rollups still answer for the thinned hours")
        // Thinning stops before the hour the head is in, however small the cap.
        _ = try store.thin(to: 1, latest: latest)
        #expect(try store.samples(ids: [ids[0]], from: .min, to: .max)[ids[0]]!.first!.0 >= Self.t0 + 5 * StoragePolicy.hour)
        try w.finish(now: latest + 1000)
    }

    /// PromQL reaches behind the raw retention through the 1-minute rollups: a gauge as each minute's
    /// mean, a counter as each minute's last value (so `rate` stays right); raw samples where they exist.
    @Test(arguments: StoreEngine.available) func queriesReadRollupsBehindTheRawRetention(_ engine: StoreEngine) throws {
        var p = StoragePolicy()
        p.rawRetention = StoragePolicy.day
        let (place, store, w) = try openWriter(engine, p)
        defer { place.remove(stopping: w) }
        let g = try w.seriesID(for: SeriesKey("g"), type: .gauge), c = try w.seriesID(for: SeriesKey("c"), type: .counter)
        var batch: [(Int64, Int64, Double)] = []
        for i in 0..<(54 * 360) { // 2 days and 6 hours: the first day's 1-minute rollups are complete
            batch.append((g, Self.t0 + Int64(i) * 10_000, Double(i % 6)))  // each minute: 0...5, mean 2.5
            batch.append((c, Self.t0 + Int64(i) * 10_000, Double(i)))      // +1 every 10 s
        }
        try w.append(batch: batch)
        try w.finish(now: Self.t0 + 54 * StoragePolicy.hour)
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        func value(_ q: String, at: Int64) throws -> Double? {
            guard case .vector(_, let v) = try engine.instant(try PromQLParser.parse(q), at: at) else { return nil }
            return v.first?.value
        }
        let early = Self.t0 + 6 * StoragePolicy.hour, late = Self.t0 + 50 * StoragePolicy.hour
        #expect(try value("avg_over_time(g[30m])", at: early) == 2.5, "minute means behind the raw horizon")
        #expect(try value("count_over_time(g[30m])", at: early) == 31, "one sample a minute there (both ends)")
        #expect(try value("count_over_time(g[30m])", at: late) == 181, "raw samples (every 10 s, both ends) where they are kept")
        let rateEarly = try #require(try value("rate(c[10m])", at: early)), rateLate = try #require(try value("rate(c[10m])", at: late))
        #expect(abs(rateEarly - 0.1) < 1e-9 && abs(rateLate - 0.1) < 1e-9, "\(rateEarly) \(rateLate)")
        // A range across the horizon has no hole.
        guard case .matrix(let m) = try engine.range(try PromQLParser.parse("max_over_time(g[5m])"), start: Self.t0 + 10 * 60_000, end: late, step: 600_000) else {
            Issue.record("not a matrix"); return
        }
        #expect(m.first?.points.count == Int((late - Self.t0 - 10 * 60_000) / 600_000) + 1)
        // At minute resolution throughout (max_source_resolution=1m): minute samples where raw ones exist
        // too. Evaluated just before a minute starts: a minute still in progress has only its first samples.
        var minutes = engine
        minutes.source = StoreSampleSource(store: store).minuteResolution
        guard case .vector(_, let v) = try minutes.instant(try PromQLParser.parse("count_over_time(g[30m])"), at: late - 1000),
              case .vector(_, let r) = try minutes.instant(try PromQLParser.parse("rate(c[10m])"), at: late - 1000) else { Issue.record("not vectors"); return }
        #expect(v.first?.value == 30 && abs((r.first?.value ?? 0) - 0.1) < 1e-9, "\(v) \(r)")
    }

    /// A store written by the first format (chunks without a header, the head log in SQLite) opens and
    /// keeps its samples.
    @Test func migratesFirstFormat() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try DatabaseQueue(path: TwinStore.databasePath(dir))
        try Schema.migrator().migrate(queue, upTo: "v1")
        var e = XORChunkEncoder()
        for i in 0..<5 { try e.append(Int64(i) * 1000, Double(i) * 0.5) }
        try queue.write { db in
            try db.execute(sql: "INSERT INTO series(id, metric, labels, type) VALUES (1, 'm', '', 'gauge')")
            try db.execute(sql: "INSERT INTO chunks VALUES (1, 0, 4000, 5, ?)", arguments: [Data(e.bytes)])
            // head_log row: u32 n, ids, f64 values
            var row = ByteWriter()
            row.u32(1); row.u32(1); row.u64((9.25).bitPattern)
            try db.execute(sql: "INSERT INTO head_log VALUES (5000, ?)", arguments: [Data(row.bytes)])
        }
        try queue.close()
        let store = try TwinStore.open(dataDir: dir)
        #expect(try store.samples(SeriesKey("m"), from: .min, to: .max)?.map(\.1) == [0, 0.5, 1, 1.5, 2, 9.25])
    }

    /// A store of per-series rows (v16: a chunk row per series and window, 30-day blocks of the 1-hour
    /// tier) is regrouped by v17 with every sample and rollup point kept; an unreadable chunk goes to
    /// the quarantine table, not away.
    @Test func regroupsPerSeriesRows() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let queue = try DatabaseQueue(path: TwinStore.databasePath(dir))
        try Schema.migrator().migrate(queue, upTo: "v16")
        let ids: [Int64] = [1, 2, 63, 64, 65, 200] // groups 0, 0, 0, 1, 1, 3
        let hour = StoragePolicy.hour
        func samples(_ id: Int64, hour h: Int64) -> [(Int64, Double)] { (0..<30).map { (Self.t0 + h * hour + Int64($0) * 60_000, Double(id) + Double($0) / 8) } }
        try queue.write { db in
            for id in ids {
                try db.execute(sql: "INSERT INTO series(id, hash, metric, labels, type) VALUES (?, ?, 'm', ?, 'gauge')", arguments: [id, id, "{s=\"\(id)\"}"])
                for h: Int64 in 0..<3 { // two compacted hours and the open one, in two windows
                    let s = samples(id, hour: h)
                    let parts = h == 2 ? [Array(s[..<10]), Array(s[10...])] : [s]
                    for p in parts {
                        try db.execute(sql: "INSERT INTO chunks(series_id, level, min_t, max_t, count, data) VALUES (?, ?, ?, ?, ?, ?)",
                                       arguments: [id, h == 2 ? 0 : 1, p[0].0, p[p.count - 1].0, p.count, Data(try ChunkCodec.encode(p))])
                    }
                }
                let points = Rollup.points(samples(id, hour: 0) + samples(id, hour: 1), step: hour)
                try db.execute(sql: "INSERT INTO rollups(series_id, tier, start, min_t, max_t, count, data) VALUES (?, 2, ?, ?, ?, ?, ?)",
                               arguments: [id, floorDiv(Self.t0, 30 * StoragePolicy.day) * 30 * StoragePolicy.day, points[0].t, points[1].t, 2, Data(try Rollup.encode(points))])
            }
            try db.execute(sql: "INSERT INTO chunks(series_id, level, min_t, max_t, count, data) VALUES (200, 0, ?, ?, 1, X'00FF')", arguments: [Self.t0 + 9 * hour, Self.t0 + 9 * hour])
            try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('tier_1h_through', ?)", arguments: [String(Self.t0 + 2 * hour)])
        }
        try queue.close()
        let store = try TwinStore.open(dataDir: dir)
        let read = try store.samples(ids: ids, from: .min, to: .max)
        for id in ids { #expect(read[id]?.map(\.1) == (0..<3).flatMap { samples(id, hour: $0) }.map(\.1), "series \(id)") }
        let (rows, quarantined) = try store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM chunks"), try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine WHERE source = 'chunks'"))
        }
        #expect(rows == 9, "3 groups × (2 hours + the open hour in one row)")
        #expect(quarantined == 1)
        let (points, tier) = try store.aggregate(id: 64, from: Self.t0, to: Self.t0 + 2 * hour - 1, step: hour)
        #expect(tier == "1h" && points == Rollup.points(samples(64, hour: 0) + samples(64, hour: 1), step: hour))
        #expect(try StoreDoctor.check(dataDir: dir).ok)
    }
}

/// A running twin's rules read their recent windows from memory fed tick by tick (`RecentSamples`): every
/// read must be what the store answers, through head windows sealed, series appearing late and sampled
/// seldom, ranges reaching back before what memory holds, and a clock set back.
@Suite struct RecentSamplesTests {
    @Test func readsFromMemoryAreWhatTheStoreAnswers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let recent = RecentSamples(keep: 120_000)
        let fed = StoreSampleSource(store: store, recent: recent), plain = StoreSampleSource(store: store)
        let t0 = EngineTests.t0 + 3_600_000 - 250_000 // an hour boundary inside the run
        let selectors: [[Matcher]] = [
            [try Matcher(name: "__name__", op: .equal, value: "a")],
            [try Matcher(name: "__name__", op: .equal, value: "a"), try Matcher(name: "k", op: .regex, value: "x|z")],
            [try Matcher(name: "__name__", op: .equal, value: "slow")],
            [try Matcher(name: "__name__", op: .equal, value: "late")],
        ]
        var compared = 0
        func compare(at t: Int64) throws {
            for m in selectors {
                for range: Int64 in [1_000, 60_000, 100_000, 300_000] {
                    let a = try fed.select(m, from: t - range, to: t, limit: .max, deadline: .max)
                    let b = try plain.select(m, from: t - range, to: t, limit: .max, deadline: .max)
                    #expect(a.map(\.labels) == b.map(\.labels) && a.map(\.t) == b.map(\.t) && a.map(\.v) == b.map(\.v), "\(m) over \(range) ms at \(t)")
                    compared += 1
                }
            }
        }
        try w.begin(now: t0, interval: 1000)
        for i in 0..<500 {
            let t = t0 + Int64(i) * 1000
            var o = Observation(timestamp: t)
            o.add("a", Labels(["k": "x"]), Double(i), .counter)
            if i % 7 != 3 { o.add("a", Labels(["k": "y"]), sin(Double(i))) } // missing now and then
            if i % 15 == 0 { o.add("slow", .empty, Double(i)) }
            if i >= 200 { o.add("late", .empty, Double(i % 4)) }
            if i == 320 { o.add("a", Labels(["k": "z"]), 1) } // a new series among those already read
            let r = try w.commit(o)
            recent.feed(at: t, ids: r.ids, values: r.values)
            if i % 5 == 0 { try compare(at: t) }
        }
        let reads = recent.reads
        #expect(reads.answered > compared / 3, "answered from memory: \(reads.answered) of \(compared)")
        #expect(reads.declined > 0)
        // The clock set back: memory starts over and declines until it holds the range again.
        let back = t0 + 100_000
        var o = Observation(timestamp: back)
        o.add("a", Labels(["k": "x"]), -1, .counter)
        recent.feed(at: back, ids: [1], values: [-1])
        let before = recent.reads.answered
        try compare(at: back - 1_000)
        #expect(recent.reads.answered == before)
        try w.finish(now: t0 + 600_000)
    }

    /// Ids of any size, the read limit, and series let go when not asked for: memory on its own.
    @Test func holdsWhatIsAskedForAndLetsIdleSeriesGo() {
        let r = RecentSamples(keep: 60_000)
        let big: Int64 = 1 << 40, small: Int64 = 7
        #expect(r.columns(ids: [small], from: 0, to: 0, limit: .max) == nil) // never fed
        r.feed(at: 1000, ids: [small, big], values: [0, 0])
        #expect(r.columns(ids: [small, big], from: 1000, to: 1000, limit: .max) == nil) // held from the next tick
        for k in 2...30 { r.feed(at: Int64(k) * 1000, ids: [big, 3, small], values: [Double(k), -1, Double(-k)]) }
        let got = r.columns(ids: [small, big], from: 2000, to: 30_000, limit: .max)
        #expect(got?[big]?.v == (2...30).map(Double.init) && got?[small]?.v == (2...30).map { -Double($0) })
        #expect(got?[big]?.t == (2...30).map { Int64($0) * 1000 })
        #expect(r.columns(ids: [small, big], from: 2000, to: 30_000, limit: 57) == nil, "58 samples over a limit of 57")
        #expect(r.columns(ids: [small], from: 2000, to: 31_000, limit: .max) == nil, "a range past the newest tick")
        // Kept a minute (trimmed once a minute): a range reaching further back goes to the store.
        for k in 31...130 { r.feed(at: Int64(k) * 1000, ids: [big, small], values: [Double(k), 0]) }
        #expect(r.columns(ids: [big], from: 30_000, to: 130_000, limit: .max) == nil)
        #expect(r.columns(ids: [big], from: 62_000, to: 130_000, limit: .max)?[big]?.v == (62...130).map(Double.init))
        // Not asked for in ten minutes: let go, then held again from the next tick on.
        for k in 131...(131 + 11 * 60) {
            r.feed(at: Int64(k) * 1000, ids: [big, small], values: [1, 1])
            if k % 60 == 0 { _ = r.columns(ids: [big], from: Int64(k) * 1000, to: Int64(k) * 1000, limit: .max) }
        }
        let now: Int64 = (131 + 11 * 60) * 1000
        #expect(r.columns(ids: [small], from: now, to: now, limit: .max) == nil)
        #expect(r.columns(ids: [big], from: now - 5000, to: now, limit: .max)?[big]?.v == [1, 1, 1, 1, 1, 1], "asked for throughout")
        r.feed(at: now + 1000, ids: [small], values: [9])
        #expect(r.columns(ids: [small], from: now + 1, to: now + 1000, limit: .max)?[small]?.v == [9])
        // The series generation moves with a new id and with the clock set back, never back to a value seen.
        let generation = r.seriesGeneration ?? 0
        r.feed(at: now + 2000, ids: [big + 1], values: [0])
        #expect(r.seriesGeneration == generation + 1)
        r.feed(at: 5000, ids: [small], values: [0])
        #expect(r.seriesGeneration == generation + 2)
        #expect(r.columns(ids: [small], from: 5000, to: 5000, limit: .max) == nil, "nothing held after the clock went back")
    }
}

/// `check` finds damage and names it; `repair` keeps everything intact and moves the rest aside.
@Suite struct CheckRepairTests {
    func filledStore(series: Int = 3) throws -> (String, [Int64]) {
        let dir = try temporaryDirectory()
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store)
        try w.open()
        let ids = try (0..<series).map { try w.seriesID(for: SeriesKey("r", Labels(["s": "\($0)"])), type: .gauge) }
        var batch: [(Int64, Int64, Double)] = []
        for i in 0..<600 { for id in ids { batch.append((id, EngineTests.t0 + Int64(i) * 1000, Double(i) + Double(id))) } }
        try w.append(batch: batch)
        try w.finish(now: EngineTests.t0 + 700_000)
        return (dir, ids)
    }

    /// A damaged byte in a group row costs that row (kept in quarantine) and nothing of other rows.
    @Test func damagedChunkIsQuarantinedAndTheRestKept() throws {
        let (dir, ids) = try filledStore(series: 70) // groups 0 and 1
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try StoreDoctor.check(dataDir: dir).ok)
        let store = try TwinStore.open(dataDir: dir)
        let victim = ids[1]
        let directory = try store.pool.write { db -> GroupBlock.Directory in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT id, members FROM chunks WHERE group_id = ?", arguments: [GroupBlock.group(of: victim)]))
            let directory = try GroupBlock.directory([UInt8](row["members"] as Data))
            // A byte of the victim's chunk, or of the deflated data it is in.
            let at = directory.deflated ? 20 : try #require(directory.find(victim)).range.lowerBound + 8
            try db.execute(sql: "UPDATE chunks SET data = CAST(substr(data, 1, ?) || X'5A' || substr(data, ?) AS BLOB) WHERE id = ?", arguments: [at, at + 2, row["id"] as Int64])
            return directory
        }
        let report = try StoreDoctor.check(dataDir: dir)
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.item.hasPrefix("chunks row") == true)
        #expect { _ = try store.samples(ids: [victim], from: 0, to: .max) } throws: { "\($0)".contains("series \(victim)") }
        let repaired = try StoreDoctor.repair(dataDir: dir)
        #expect(repaired.check.ok && repaired.actions.contains { $0.contains("quarantine") })
        let counts = try store.samples(ids: ids, from: 0, to: .max).mapValues(\.count)
        for id in ids {
            #expect(counts[id] == 600 - (directory.find(id)?.count ?? 0), "series \(id)")
        }
        #expect(counts[victim]! < 600)
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine") } == 1, "the damaged bytes are kept")
    }

    @Test func damagedLogSegmentIsCutAtItsLastGoodRecord() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store)
        try w.open()
        let id = try w.seriesID(for: SeriesKey("x"), type: .gauge)
        for i in 0..<20 { try w.append(batch: [(id, EngineTests.t0 + Int64(i) * 1000, Double(i))]) }
        // Freeze the files as a crash would leave them, with damage in the tenth record of an older segment.
        try store.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.full) }
        let copy = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: dir + "/twin.db", toPath: copy + "/twin.db")
        try FileManager.default.copyItem(atPath: dir + "/wal", toPath: copy + "/wal")
        try w.finish(now: EngineTests.t0 + 30_000)
        let seg = try #require(LogSegment.list(copy).last)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: seg.path))
        let recordSize = (bytes.count - LogSegment.headerSize) / 20
        bytes[LogSegment.headerSize + 9 * recordSize + 10] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: seg.path))
        try Data(LogSegment.header(seg.seq + 1)).write(to: URL(fileURLWithPath: LogSegment.path(copy, seg.seq + 1)))
        let report = try StoreDoctor.check(dataDir: copy)
        #expect(report.problems.contains { $0.file == seg.path && $0.detail.contains("checksum") })
        let repaired = try StoreDoctor.repair(dataDir: copy)
        #expect(repaired.check.ok, "\(repaired.actions)")
        #expect(FileManager.default.fileExists(atPath: seg.path + ".damaged"))
        let again = TwinWriter(store: try TwinStore.open(dataDir: copy))
        try again.open()
        try again.finish(now: EngineTests.t0 + 40_000)
        #expect(try TwinStore.open(dataDir: copy).samples(SeriesKey("x"), from: 0, to: .max)?.map(\.1) == (0..<9).map(Double.init), "the nine records before the damage")
    }

    @Test func damagedDatabaseIsRebuiltFromReadableRows() throws {
        let (dir, ids) = try filledStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Scribble over the last page of the chunks table (the schema's own pages stay readable: a store
        // whose schema is gone has nothing to rebuild from).
        let path = TwinStore.databasePath(dir)
        let page = try #require(try TwinStore.open(dataDir: dir, readOnly: true).pool.read { db in
            try Int.fetchOne(db, sql: "SELECT max(pageno) FROM dbstat WHERE name = 'chunks'")
        })
        let fh = try #require(FileHandle(forUpdatingAtPath: path))
        try fh.seek(toOffset: UInt64((page - 1) * 4096))
        fh.write(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }))
        try fh.close()
        let report = try StoreDoctor.check(dataDir: dir)
        #expect(!report.ok)
        let repaired = try StoreDoctor.repair(dataDir: dir)
        print("repair after a scribbled page: \(report.problems.map(\.detail)) -> \(repaired.actions)")
        #expect(repaired.actions.contains { $0.contains("rebuilt") } || repaired.actions.contains { $0.contains("quarantine") }, "\(repaired.actions)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.hasPrefix("twin.db.damaged-") } || repaired.actions.contains { $0.contains("quarantine") })
        #expect(repaired.check.ok, "\(repaired.check.problems.map(\.detail))")
        // Whatever was readable is still there.
        let store = try TwinStore.open(dataDir: dir, readOnly: true)
        #expect(try store.series().count >= 1)
        _ = ids
    }
}

/// The writer's series index: positional matching across ticks, resynchronised after a collector that ran
/// at only one of two ticks, and the uniqueness check.
@Suite struct WriterSeriesIndexTests {
    static func samples(_ names: [String]) -> [MetricSample] { names.map { MetricSample(SeriesKey($0), 1) } }

    /// Looks a tick up, gives its unknown series ids (the next free ones, as the store would) and remembers it.
    static func tick(_ index: inout WriterSeriesIndex, _ names: [String], nextID: inout Int64) -> WriterSeriesIndex.Lookup {
        var l = index.lookup(samples(names))
        var learned: [SeriesKey: Int64] = [:]
        for i in l.unknown {
            let key = l.keys[i]
            if let id = learned[key] { l.ids[i] = id; continue }
            learned[key] = nextID
            l.ids[i] = nextID
            nextID += 1
        }
        index.learn(learned)
        index.remember(l, unique: index.isUnique(l))
        return l
    }

    @Test func aShiftedTickIsMatchedByPositionAfterTheShift() {
        var index = WriterSeriesIndex()
        var next: Int64 = 1
        let all = (0..<40).map { "m\($0)" }
        let relaxed = ["r0", "r1", "r2"]
        let first = Self.tick(&index, Array(all[..<10]) + relaxed + Array(all[10...]), nextID: &next)
        #expect(first.unknown.count == 43 && first.positional == 0)
        let ids = Dictionary(uniqueKeysWithValues: zip(first.keys.map(\.metric), first.ids))

        // The relaxed collector's samples left out: only the first series after the gap is looked up by key.
        let without = Self.tick(&index, all, nextID: &next)
        #expect(without.unknown.isEmpty)
        #expect(without.positional == 39)
        #expect(without.ids == all.map { ids[$0]! })

        // Back in: its three samples are looked up by key, the rest match by position.
        let with = Self.tick(&index, Array(all[..<10]) + relaxed + Array(all[10...]), nextID: &next)
        #expect(with.positional == 40)
        #expect(with.ids == first.ids)

        // A new series in the middle and one gone: ids stay right, positions resume after each.
        var changed = all
        changed.remove(at: 30)
        changed.insert("new", at: 5)
        let c = Self.tick(&index, changed, nextID: &next)
        #expect(c.unknown == [5])
        #expect(c.ids.enumerated().allSatisfy { i, id in i == 5 ? id == 44 : id == ids[changed[i]]! })
        #expect(c.positional >= 36)
    }

    @Test func aSeriesTwiceInATickIsFound() {
        var index = WriterSeriesIndex()
        var next: Int64 = 1
        let a = Self.tick(&index, ["a", "b", "c"], nextID: &next)
        let unique = index.isUnique(a)
        #expect(unique)
        // Matched by position, by key, and twice: the second "a" comes after the position already used.
        let twice = index.lookup(Self.samples(["a", "b", "c", "a"]))
        let twiceUnique = index.isUnique(twice)
        #expect(twice.ids == [1, 2, 3, 1] && !twiceUnique)
        let again = index.lookup(Self.samples(["c", "a", "b"]))
        let againUnique = index.isUnique(again)
        #expect(again.ids == [3, 1, 2] && againUnique)
        let cc = index.lookup(Self.samples(["c", "c"]))
        let ccUnique = index.isUnique(cc)
        #expect(!ccUnique)
        // Ids above the dense range take the set.
        index.learn(SeriesKey("far"), WriterSeriesIndex.denseLimit + 5)
        let far = index.lookup(Self.samples(["far", "a", "far"]))
        let farUnique = index.isUnique(far)
        #expect(!farUnique)
        let farOnce = index.lookup(Self.samples(["far", "a"]))
        let farOnceUnique = index.isUnique(farOnce)
        #expect(farOnceUnique)
    }
}
