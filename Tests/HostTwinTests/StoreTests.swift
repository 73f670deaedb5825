import Foundation
import GRDB
import Synchronization
import Testing
import TwinCore
@testable import TwinStorage

/// The embedded store: state reconstruction, samples across the head log and chunks, restarts, bad input.
extension StoragePolicy {
    /// 20-second head windows, so tests cross several cuts quickly.
    static var testing: StoragePolicy {
        var p = StoragePolicy()
        p.headWindow = 20_000
        return p
    }
}

@Suite struct StoreTests {
    /// A fresh store on `engine` with a writer that has begun a run at `now`; the caller removes the store.
    func startedWriter(_ engine: StoreEngine, at now: Int64) throws -> (EngineStore, TwinStore, TwinWriter) {
        let place = try EngineStore(engine)
        let store = try place.open()
        let w = TwinWriter(store: store)
        try w.begin(now: now, interval: 1000)
        return (place, store, w)
    }

    /// A fresh store on `engine` with a writer (20-second head windows) that has begun a run just before `t0`,
    /// and a reader of it; the caller removes the store.
    func writerAndReader(_ engine: StoreEngine, at t0: Int64) throws -> (EngineStore, TwinWriter, TwinStore) {
        let place = try EngineStore(engine)
        let writer = TwinWriter(store: try place.open(), policy: .testing)
        try writer.begin(now: t0 - 1, interval: 1000)
        return (place, writer, try place.open(readOnly: true))
    }

    /// A background pass over every series (the anomaly monitor's, a rule's scan) reads sealed chunks
    /// without adding them to the caches, which are emptied only when full: what it gets is what a cached
    /// read gets, and only the cached read fills them.
    @Test func aBackgroundReadLeavesTheCachesEmpty() throws {
        let t0: Int64 = 1_800_000_000_000 / 3_600_000 * 3_600_000
        let (store, dir) = try storeOfTicks("hosttwin-uncached", t0: t0, interval: 5_000, ticks: 360) { i, t in
            var obs = Observation(timestamp: t)
            for k in 0..<5 { obs.add("gauge_\(k)", .empty, Double(i % (k + 3)) + Double(k)) }
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ids = try store.seriesCatalog().map(\.id)
        func held() -> (chunks: Int, rows: Int, directories: Int) {
            (store.chunkCache.withLock { $0.held }, store.rowDataCache.withLock { $0.held }, store.directoryCache.withLock { $0.count })
        }
        let background = try store.aggregate(ids: ids, from: t0, to: t0 + 1_800_000, step: 60_000, cached: false)
        #expect(background.tier.hasSuffix("raw") && background.points.count == 5 && background.points.values.allSatisfy { $0.count == 30 }, "\(background.tier) \(background.points.mapValues(\.count))")
        #expect(held() == (0, 0, 0))
        let query = try store.aggregate(ids: ids, from: t0, to: t0 + 1_800_000, step: 60_000)
        #expect(query.points == background.points)
        let after = held()
        #expect(after.chunks > 0 && after.rows > 0 && after.directories > 0, "\(after)")
    }

    /// The writer's process answers minute reads of its last minutes from what its ticks folded: the same
    /// points, to the bit, as a reader of the store (log and sealed chunks) gets, at every moment of a run
    /// that crosses minutes, head-window seals and a midnight; a range it does not hold whole (before its
    /// first whole minute, older than it keeps, cut inside a minute before the newest tick) is read from the
    /// store; and a bulk write stops it for good.
    @Test func theWritersRecentMinutesAreWhatTheStoreHolds() throws {
        let minute: Int64 = 60_000
        // 25 s before a midnight, so the run starts inside a minute and crosses a day.
        let t0: Int64 = 1_800_000_000_000 / 86_400_000 * 86_400_000 + 86_400_000 - 14 * minute - 25_000
        // Head windows of a minute: with shorter ones (the tests' 20 s) a minute's samples are folded in parts
        // (a sealed row's, the log's) and the parts' sums added, which may differ in the last bit.
        let place = try EngineStore(.sqlite)
        defer { place.remove() }
        var policy = StoragePolicy()
        policy.headWindow = minute
        let writer = TwinWriter(store: try place.open(), policy: policy)
        try writer.begin(now: t0 - 1, interval: 1000)
        let reader = try place.open(readOnly: true)
        let store = writer.store
        let since = (t0 / minute + 1) * minute
        var ids: [Int64] = []
        var compared = 0
        var storedTiers = Set<String>()
        for i in 0..<1_200 {
            let t = t0 + Int64(i) * 1000 + Int64(i % 7) // ticks not on whole seconds
            var obs = Observation(timestamp: t)
            obs.add("cpu_seconds_total", .empty, Double(i) * 0.37 + 0.1, .counter)
            obs.add("load", .empty, sin(Double(i) / 11) * 3.3)
            // A series that comes and goes, and one that starts late.
            if (i / 90) % 2 == 0 { obs.add("flapping", .empty, Double(i % 13) / 3) }
            if i >= 500 { obs.add("late", .empty, Double(i) / 7) }
            _ = try writer.commit(obs)
            guard i % 23 == 0 || i == 1_199 else { continue }
            ids = try reader.seriesCatalog().map(\.id)
            let newestMinute: Int64 = t / minute * minute
            let oldestKept: Int64 = newestMinute - 12 * minute
            for k: Int64 in 0...14 {
                let from: Int64 = newestMinute - k * minute
                let ends: [Int64] = [from + minute - 1, newestMinute + minute - 1, t, t - 500]
                for to in ends where to >= from {
                    let mine = try store.aggregate(ids: ids, from: from, to: to, step: minute, cached: false)
                    let stored = try reader.aggregate(ids: ids, from: from, to: to, step: minute, cached: false)
                    #expect(mine.points == stored.points, "tick \(i), [\(from - t0), \(to - t0)]: \(mine.tier) against \(stored.tier)")
                    // Held: from its first whole minute, 12 finished minutes back, and a range ending inside
                    // a minute only at or after the newest tick.
                    let whole: Bool = to >= t || (to + 1) % minute == 0
                    let held: Bool = from >= since && from >= oldestKept && whole
                    #expect((mine.tier == "recent") == held, "tick \(i), [\(from - t0), \(to - t0)]: \(mine.tier)")
                    if mine.tier == "recent" { compared += 1 }
                    storedTiers.insert(stored.tier)
                }
            }
        }
        #expect(compared > 500)
        // The store's answers came from sealed chunks, the log and, for the minutes before midnight, the
        // day's 1-minute rollups.
        #expect(storedTiers.contains { $0.hasPrefix("1m") } && storedTiers.contains("raw"), "\(storedTiers)")
        // A range not starting on a minute, or at a coarser step, is read from the store.
        let last = t0 + 1_199_000
        #expect(try store.aggregate(ids: ids, from: last - 120_000, to: last, step: minute).tier != "recent")
        #expect(try store.aggregate(ids: ids, from: last / minute * minute - 5 * minute, to: last, step: 5 * minute).tier != "recent")
        // After a bulk write the writer's process reads the store, which has that sample too.
        let load = try #require(try reader.seriesID(SeriesKey("load")))
        _ = try writer.append(batch: [(load, last + 500, 99)])
        let from = last / minute * minute - 3 * minute
        let after = try store.aggregate(ids: ids, from: from, to: last + 1000, step: minute)
        #expect(after.tier != "recent" && after.points[load]?.last?.last == 99)
        _ = try writer.commit({ var o = Observation(timestamp: last + 2000); o.add("load", .empty, 1); return o }())
        #expect(try store.aggregate(ids: ids, from: from, to: last + 2000, step: minute).tier != "recent")
    }

    /// A long-lived reader (the server) decodes each log segment incrementally: reading between ticks,
    /// across head-window cuts and seals, it sees exactly the samples written, once each.
    @Test(arguments: StoreEngine.available) func longLivedReaderFollowsTheLog(_ engine: StoreEngine) throws {
        let t0: Int64 = 1_800_000_000_000
        let (place, writer, reader) = try writerAndReader(engine, at: t0)
        defer { place.remove() }
        var written: [(Int64, Double)] = []
        for i in 0..<75 {
            let t = t0 + Int64(i) * 1000
            var obs = Observation(timestamp: t)
            obs.add("x_total", .empty, Double(i * i), .counter)
            _ = try writer.commit(obs)
            written.append((t, Double(i * i)))
            if i % 7 == 0 || i == 74 {
                let got = try #require(try reader.samples(SeriesKey("x_total"), from: .min, to: .max))
                #expect(got.map(\.0) == written.map(\.0) && got.map(\.1) == written.map(\.1), "after tick \(i): \(got.count) of \(written.count)")
                let recent = try #require(try reader.samples(SeriesKey("x_total"), from: t - 5000, to: t))
                #expect(recent.count == min(6, written.count))
            }
        }
        try writer.finish(now: t0 + 100_000)
        #expect(try reader.samples(SeriesKey("x_total"), from: .min, to: .max)?.count == written.count)
    }

    /// A long-lived reader keeps what it decoded of the head log for the series it asked for only (on
    /// files, since the last seal), and a read of others decodes the log again: every read still sees every
    /// sample written, once. A background read decodes into tails of its own, which it lets go.
    @Test(arguments: StoreEngine.available) func aReaderKeepsTheHeadLogOfTheSeriesItAskedFor(_ engine: StoreEngine) throws {
        let t0: Int64 = 1_800_000_000_000
        let (place, writer, reader) = try writerAndReader(engine, at: t0)
        defer { place.remove() }
        let names = (0..<6).map { "g\($0)" }
        var written: [String: [(Int64, Double)]] = [:]
        var asked = Set<Int64>()
        func held(_ tails: borrowing Mutex<LogTails>) -> Set<Int64> { tails.withLock { Set($0.tails.values.flatMap { $0.byID.keys }) } }
        func read(_ name: String) throws {
            let got = try #require(try reader.samples(SeriesKey(name), from: .min, to: .max))
            #expect(got.map(\.0) == written[name]!.map(\.0) && got.map(\.1) == written[name]!.map(\.1), "\(name): \(got.count) of \(written[name]!.count)")
            asked.insert(try #require(try reader.seriesID(SeriesKey(name))))
        }
        for i in 0..<75 {
            let t = t0 + Int64(i) * 1000
            var obs = Observation(timestamp: t)
            for (k, name) in names.enumerated() {
                obs.add(name, .empty, Double(i * (k + 1)))
                written[name, default: []].append((t, Double(i * (k + 1))))
            }
            _ = try writer.commit(obs)
            guard i % 3 == 0 else { continue }
            // g0 always; g1 from tick 30; g2 and g3 at tick 45 only.
            for name in ["g0"] + (i >= 30 ? ["g1"] : []) + (i == 45 ? ["g2", "g3"] : []) { try read(name) }
            let kept = held(reader.logTails)
            #expect(kept.isSubset(of: asked), "tick \(i): the tails hold \(kept.sorted()), asked \(asked.sorted())")
        }
        let g0 = try #require(try reader.seriesID(SeriesKey("g0"))), g5 = try #require(try reader.seriesID(SeriesKey("g5")))
        #expect(!held(reader.logTails).contains(g5))
        let all = try reader.seriesCatalog().map(\.id)
        let background = try reader.aggregate(ids: all, from: t0, to: t0 + 75_000, step: 60_000, cached: false)
        #expect(background.points[g5]?.map(\.count) == [60, 15], "\(String(describing: background.points[g5]))")
        #expect(!held(reader.logTails).contains(g5) && held(reader.backgroundLogTails).contains(g5))
        reader.releaseBackgroundReads()
        #expect(reader.backgroundLogTails.withLock { $0.tails.isEmpty })
        // After a seal, a read of g0 alone keeps g0 alone (files; a table keeps what was asked).
        try writer.flush()
        for i in 75..<78 {
            var obs = Observation(timestamp: t0 + Int64(i) * 1000)
            for (k, name) in names.enumerated() {
                obs.add(name, .empty, Double(i * (k + 1)))
                written[name, default: []].append((t0 + Int64(i) * 1000, Double(i * (k + 1))))
            }
            _ = try writer.commit(obs)
        }
        try read("g0")
        #expect(engine == .sqlite ? held(reader.logTails) == [g0] : held(reader.logTails).isSubset(of: asked), "\(held(reader.logTails).sorted())")
        try writer.finish(now: t0 + 100_000)
    }

    /// Random entity churn over many ticks. For every tick T, `state(at: T)` must equal what was observed
    /// at T (per kind, the latest snapshot of that kind at or before T), also between ticks, across seals
    /// and across a restart of the writer.
    @Test(arguments: StoreEngine.available) func stateReconstructionIsExact(_ engine: StoreEngine) throws {
        let place = try EngineStore(engine)
        defer { place.remove() }
        let store = try place.open()
        try Self.checkStateReconstruction(store, dir: place.dir)
        guard engine == .postgres else { return }
        let held = try store.database.read { try $0.rows("SELECT (SELECT count(*) FROM version_blocks), (SELECT count(*) FROM chunks), (SELECT count(*) FROM tick_runs)").first }
        #expect(held?.values.allSatisfy { ($0.int64 ?? 0) > 0 } == true, "version blocks, chunks and tick runs are in PostgreSQL: \(String(describing: held))")
        #expect(try TwinStore.open(dataDir: place.dir, readOnly: true).counts()["versions"] == 0, "the data directory's SQLite file holds none of it")
    }

    /// The body of ``stateReconstructionIsExact(_:)``.
    static func checkStateReconstruction(_ store: TwinStore, dir: String) throws {
        var writer = TwinWriter(store: store, policy: .testing)
        let t0: Int64 = 1_800_000_000_000
        try writer.begin(now: t0 - 1, interval: 1000)
        var rng = SystemRandomNumberGenerator()
        var live: [EntityKind: [String: [String: AttributeValue]]] = [:]
        var expected: [(Int64, [EntityKind: [String: [String: AttributeValue]]])] = []
        var emitted: [TwinEvent] = []
        let kinds: [EntityKind] = [.processes, .listeningPorts, .packages]
        for i in 0..<120 {
            let t = t0 + Int64(i) * 1000
            if i == 60 {
                // Restart: a new writer continues the same store.
                try writer.finish(now: t - 500)
                writer = TwinWriter(store: store, policy: .testing)
                try writer.begin(now: t - 400, interval: 1000)
            }
            var obs = Observation(timestamp: t)
            for kind in kinds {
                // Packages are collected every 5th tick only; other kinds every tick.
                if kind == .packages && i % 5 != 0 { continue }
                var m = live[kind] ?? [:]
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    let key = "k\(Int.random(in: 0..<12, using: &rng))"
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: m[key] = nil
                    case 1: m[key] = ["v": .int(Int64.random(in: 0..<3, using: &rng)), "name": .string(key)]
                    default: m[key]?["extra"] = Bool.random(using: &rng) ? .bool(true) : nil
                    }
                }
                live[kind] = m
                obs.set(kind, m.map { Entity(kind: kind, key: $0.key, attributes: $0.value) })
            }
            obs.add("x_total", .empty, Double(i), .counter)
            emitted += try writer.commit(obs).events
            expected.append((t, live))
        }
        try writer.finish(now: t0 + 200_000)
        // The same answers from rows, from rows and packed blocks, from blocks only, and from the blocks
        // merged per class and hour by compaction.
        let totalVersions = try store.counts()["versions"]
        for step in ["rows", "half packed", "packed", "merged"] {
            switch step {
            case "half packed": try store.packVersions(before: t0 + 60_000)
            case "packed": try store.packVersions(before: .max)
            case "merged":
                let blocks = try #require(try store.counts()["version_blocks"])
                #expect(try store.compactVersionBlocks(before: t0 + 3_600_000) > 0)
                let merged = try #require(try store.counts()["version_blocks"])
                #expect(merged < blocks)
                #expect(try store.compactVersionBlocks(before: t0 + 3_600_000) == 0, "merging again changes nothing")
                #expect(try store.counts()["version_blocks"] == merged)
            default: break
            }
            #expect(try store.counts()["versions"] == totalVersions)
            for (t, snapshot) in expected {
                for probe in [t, t + 999] {
                    let state = try store.state(at: probe)
                    var got: [EntityKind: [String: [String: AttributeValue]]] = [:]
                    for v in state { got[v.kind, default: [:]][v.key] = v.attributes }
                    for kind in kinds {
                        #expect((got[kind] ?? [:]) == (snapshot[kind] ?? [:]), "kind \(kind) at \(probe - t0)")
                    }
                }
            }
            #expect(try store.state(at: t0 - 10).isEmpty)
            let samples = try #require(try store.samples(SeriesKey("x_total"), from: t0, to: t0 + 200_000))
            #expect(samples.map(\.1) == (0..<120).map(Double.init))
            #expect(samples.map(\.0) == (0..<120).map { t0 + Int64($0) * 1000 })
            let events = try store.events(from: t0 - 1000, to: t0 + 300_000)
            #expect(events.contains { $0.type == .gap })
            // Entity events read back (derived from versions) are exactly those the writer reported.
            func describe(_ e: TwinEvent) -> String { "\(e.time) \(e.type) \(e.kind?.rawValue ?? "") \(e.key ?? "") \(e.changes)" }
            let stored = events.filter { [.appeared, .changed, .disappeared].contains($0.type) }.map(describe).sorted()
            #expect(stored == emitted.map(describe).sorted())
            #expect(!emitted.isEmpty)
            #expect(events.filter { $0.type == .started }.count == 2)
        }
        #expect(try store.counts()["version_blocks"] ?? 0 > 0)
        #expect(try store.ticks(from: 1).count == 120 && store.epoch() != nil)
        guard store.database.dialect == .sqlite else { return }
        let report = try StoreDoctor.check(dataDir: dir)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.versions == Int(totalVersions ?? -1))
    }

    /// Rewriting stored versions (key rotation re-seals them) reaches packed blocks as well as rows.
    @Test(arguments: StoreEngine.available) func rewriteReachesPackedVersions(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 999)
        defer { place.remove(stopping: w) }
        for (i, name) in ["a", "b", "c"].enumerated() {
            var o = Observation(timestamp: 1000 * Int64(i + 1))
            o.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: ["name": .string(name)])])
            try w.commit(o)
        }
        try w.finish(now: 5000)
        #expect(try store.packVersions(before: 3001) == 2)
        let changed = try store.rewriteVersions { _, key, attrs in (key, attrs.mapValues { v in v.description == "b" ? .string("B") : v }) }
        #expect(changed == 3)
        #expect(try store.state(at: 2500).first?.attributes["name"] == .string("B"))
        #expect(try store.state(at: 3500).first?.attributes["name"] == .string("c"))
        #expect(try store.counts()["version_blocks"] == 1)
    }

    @Test(arguments: StoreEngine.available) func diffListsAppearedChangedDisappeared(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 999)
        defer { place.remove(stopping: w) }
        var a = Observation(timestamp: 1000)
        a.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: ["name": "init", "state": "running"]),
                           Entity(kind: .processes, key: "2@5", attributes: ["name": "old"])])
        try w.commit(a)
        var b = Observation(timestamp: 2000)
        b.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: ["name": "init", "state": "stopped"]),
                           Entity(kind: .processes, key: "3@9", attributes: ["name": "new"])])
        let r = try w.commit(b)
        #expect(Set(r.events.map(\.type)) == [.appeared, .changed, .disappeared])
        let d = try store.diff(from: 1000, to: 2000)
        #expect(d.appeared.map(\.key) == ["3@9"])
        #expect(d.disappeared.map(\.key) == ["2@5"])
        #expect(d.changed.count == 1)
        #expect(d.changed[0].changes == [TwinEvent.Change(attribute: "state", old: "running", new: "stopped")])
        let old = try store.state(at: 1500, kinds: [.processes])
        #expect(old.first { $0.key == "2@5" }?.validTo == 2000)
        #expect(try store.state(at: 2000, kinds: [.processes]).first { $0.key == "3@9" }?.validTo == nil)
    }

    /// An unchanged entity whose attributes came apart from the open version's (read back from the store at
    /// a restart) is no change, and the open version takes the collector's attributes: from then on the
    /// two share storage and compare without a look inside. A change is still a change.
    @Test func theTrackerAdoptsEqualAttributes() {
        func attributes(_ state: String) -> [String: AttributeValue] { ["name": .string("init"), "state": .string(state)] }
        var tracker = StateTracker(current: [.processes: ["1@1": .init(attributes: attributes("alive"), rowID: 7, validFrom: 500)]])
        var obs = Observation(timestamp: 1000)
        obs.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: attributes("alive"))])
        #expect(!StateTracker.sameStorage(tracker.current[.processes]!["1@1"]!.attributes, obs.entities[.processes]![0].attributes))
        let first = tracker.delta(for: obs)
        #expect(first.isEmpty && first.events.isEmpty && first.adopt.map(\.key) == ["1@1"])
        tracker.apply(first, opened: [], at: 1000)
        #expect(StateTracker.sameStorage(tracker.current[.processes]!["1@1"]!.attributes, obs.entities[.processes]![0].attributes))
        #expect(tracker.current[.processes]!["1@1"]!.rowID == 7 && tracker.current[.processes]!["1@1"]!.validFrom == 500)
        obs.timestamp = 2000
        let second = tracker.delta(for: obs)
        #expect(second.isEmpty && second.adopt.isEmpty)
        obs.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: attributes("zombie"))])
        let third = tracker.delta(for: obs)
        #expect(third.close.map(\.rowID) == [7] && third.open.count == 1 && third.adopt.isEmpty)
        #expect(third.events.map(\.type) == [.changed])
    }

    /// Long attribute JSON (command lines) is stored deflated and reads back identical; short JSON stays text.
    @Test(arguments: StoreEngine.available) func longAttributesAreStoredDeflated(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 0)
        defer { place.remove(stopping: w) }
        let command = "swift-frontend " + (0..<300).map { "-I /work/main/.build/debug/Module\($0 % 17).swiftmodule" }.joined(separator: " ")
        var o = Observation(timestamp: 1000)
        o.set(.processes, [Entity(kind: .processes, key: "1@1", attributes: ["command": .string(command), "pid": .int(1)]),
                           Entity(kind: .processes, key: "2@2", attributes: ["command": .string("sleep 1"), "pid": .int(2)])])
        try w.commit(o)
        let back = try store.state(at: 1000, kinds: [.processes])
        #expect(back.first { $0.key == "1@1" }?.attributes["command"] == .string(command))
        #expect(back.first { $0.key == "2@2" }?.attributes["command"] == .string("sleep 1"))
        // SQLite: a BLOB is deflated, TEXT is not; PostgreSQL: the bytea's first byte says (AttributeJSON.Tag).
        let kind = engine == .sqlite ? "typeof(attributes)" : "CASE get_byte(attributes, 0) WHEN 1 THEN 'blob' ELSE 'text' END"
        let types = try store.database.read { db in try db.rows("SELECT \(kind) FROM versions ORDER BY key").map { $0[0].string } }
        #expect(types == ["blob", "text"])
        let stored = try EngineStore.integer(store, "SELECT \(engine == .sqlite ? "length" : "octet_length")(attributes) FROM versions WHERE key = '1@1'") ?? 0
        #expect(stored < command.utf8.count / 4)
    }

    /// A series a tick reports twice keeps its first value, tick after tick (the writer skips the
    /// repeat check only for a series list it has already checked).
    @Test(arguments: StoreEngine.available) func aSeriesTwiceInOneTickKeepsItsFirstValue(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 0)
        defer { place.remove(stopping: w) }
        for i in 1...3 {
            var o = Observation(timestamp: Int64(i) * 1000)
            o.add("dup", .empty, Double(i))
            o.add("other", .empty, 0)
            o.add("dup", .empty, -1)
            try w.commit(o)
        }
        #expect(try store.samples(SeriesKey("dup"), from: 0, to: 10_000)?.map(\.1) == [1, 2, 3])
        try w.finish(now: 5000)
        #expect(try store.samples(SeriesKey("dup"), from: 0, to: 10_000)?.map(\.1) == [1, 2, 3])
    }

    @Test(arguments: StoreEngine.available) func refusesOutOfOrderTicksWithoutWriting(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 0)
        defer { place.remove(stopping: w) }
        var o = Observation(timestamp: 5000)
        o.add("m", .empty, 1)
        try w.commit(o)
        var back = Observation(timestamp: 4000)
        back.add("m", .empty, 2)
        back.set(.processes, [Entity(kind: .processes, key: "x", attributes: [:])])
        #expect(throws: TwinError.self) { try w.commit(back) }
        #expect(try store.state(at: 10_000).isEmpty)
        #expect(try store.samples(SeriesKey("m"), from: 0, to: 10_000)?.map(\.1) == [1])
    }

    @Test(arguments: StoreEngine.available) func corruptChunkIsReportedWithItsLocation(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 0)
        defer { place.remove(stopping: w) }
        for i in 1...50 {
            var o = Observation(timestamp: Int64(i) * 1000)
            o.add("m", .empty, Double(i) * 1.1)
            try w.commit(o)
        }
        try w.flush()
        try store.database.write { db in try db.execute("UPDATE chunks SET data = ?", [[UInt8]([0xFF, 0x00])]) }
        #expect {
            _ = try store.samples(SeriesKey("m"), from: 0, to: 100_000)
        } throws: { error in
            guard case TwinError.corrupt(let what, _) = error else { return false }
            return what.contains("chunk") && what.contains("of series")
        }
        // Other data stays readable.
        #expect(try store.events(from: 0, to: 100_000).contains { $0.type == .started })
    }

    @Test(arguments: StoreEngine.available) func idleSeriesLeaveMemoryButKeepTheirIdentity(_ engine: StoreEngine) throws {
        let (place, store, w) = try startedWriter(engine, at: 0)
        defer { place.remove(stopping: w) }
        func tick(_ t: Int64, _ names: [String]) throws {
            var o = Observation(timestamp: t)
            for n in names { o.add(n, .empty, Double(t)) }
            try w.commit(o)
        }
        try tick(1000, ["a", "b"])
        try w.flush()
        try tick(2000, ["a"])
        try w.flush() // "b" was not seen in this window: evicted from memory
        try tick(3000, ["a", "b"])
        try w.flush()
        #expect(try store.series().count == 2, "b is found again, not inserted twice")
        #expect(try store.samples(SeriesKey("b"), from: 0, to: 10_000)?.map(\.0) == [1000, 3000])
    }

    @Test(arguments: StoreEngine.available) func oneWriterPerStore(_ engine: StoreEngine) throws {
        let place = try EngineStore(engine)
        let first = TwinWriter(store: try place.open())
        defer { place.remove(stopping: first) }
        try first.begin(now: 1000, interval: 1000)
        let second = TwinWriter(store: try place.open())
        #expect { try second.begin(now: 2000, interval: 1000) } throws: { "\($0)".contains("another HostTwin writer") }
    }

    @Test func missingOrForeignStoreGivesClearErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect {
            _ = try TwinStore.open(dataDir: dir + "/nothing", readOnly: true)
        } throws: { "\($0)".contains("no HostTwin data") }
        try Data("this is not a database at all, just text".utf8).write(to: URL(fileURLWithPath: dir + "/twin.db"))
        #expect(throws: (any Error).self) { _ = try TwinStore.open(dataDir: dir) }
    }
}

/// The fast attribute JSON reader agrees with JSONDecoder on everything the writer produces, and
/// refuses what it does not understand (the caller then falls back to JSONDecoder).
@Suite struct FlatJSONTests {
    @Test func agreesWithJSONDecoder() throws {
        var rng = SystemRandomNumberGenerator()
        let samples: [AttributeValue] = [
            .int(0), .int(-1), .int(.max), .int(.min), .double(1.5), .double(-0.0), .double(2.0), .double(1e300), .double(5e-324),
            .double(0.1), .bool(true), .bool(false), .null, .string(""), .string("plain"), .string("quote \" backslash \\ slash /"),
            .string("tab\tnewline\ncontrol\u{1}"), .string("unicode é ü 漢字 🙂"), .string("a=b; c&d <e>"),
        ]
        for round in 0..<300 {
            var attrs: [String: AttributeValue] = [:]
            for k in 0..<Int.random(in: 0...8, using: &rng) { attrs["k\(k)\(round % 3 == 0 ? "é\"" : "")"] = samples.randomElement(using: &rng)! }
            if round % 5 == 0 { attrs["d"] = .double(Double.random(in: -1e6...1e6, using: &rng)) }
            // Both engines' stored forms read back the same (JSON itself reads 2.0 back as 2).
            #expect(try AttributeJSON.decode(AttributeJSON.encode(attrs, for: .postgres), .postgres, where: "round \(round)")
                    == AttributeJSON.decode(AttributeJSON.encode(attrs, for: .sqlite), .sqlite, where: "round \(round)"))
            let stored = try AttributeJSON.encode(attrs, for: .sqlite)
            guard case .text(let text) = stored else { continue }
            let viaDecoder = try JSONDecoder().decode([String: AttributeValue].self, from: Data(text.utf8))
            let viaFlat = Array(text.utf8).withUnsafeBytes { FlatJSON.parse($0) }
            #expect(viaFlat == viaDecoder, "\(text)")
        }
        // Long JSON is deflated in both forms; a PostgreSQL value without its tag, or with a damaged body, is an error.
        let long: [String: AttributeValue] = ["command": .string(String(repeating: "/usr/lib/jvm/bin/java -Xmx4g ", count: 20))]
        for dialect in [SQLDialect.sqlite, .postgres] {
            let stored = try AttributeJSON.encode(long, for: dialect)
            #expect(stored.bytes != nil && stored.bytes!.count < 200)
            #expect(try AttributeJSON.decode(stored, dialect, where: "long") == long)
        }
        for bad: [UInt8] in [[], [7, 1, 2], [1, 200, 0, 0, 0, 9, 9, 9], [0, 0x7B]] {
            #expect(throws: TwinError.self) { try AttributeJSON.decode(.blob(bad), .postgres, where: "bad") }
        }
        for bad in ["", "{", "[1]", "{\"a\":[1]}", "{\"a\":{}}", "{\"a\" 1}", "{\"a\":1,}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{} x", "{\"a\":tru}"] {
            #expect(Array(bad.utf8).withUnsafeBytes { FlatJSON.parse($0) } == nil, "\(bad)")
        }
    }
}
