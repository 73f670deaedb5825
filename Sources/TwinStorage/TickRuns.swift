import Foundation
import TwinCore

/// Positions of the sync protocol in a store: its epoch and the sequence numbers of its committed ticks
/// (docs/format/sync.md). Sealed ticks are kept as runs on the interval grid in `tick_runs`, one row per
/// run, so a day of 1 s ticks without a gap is one row; the ticks still in the log follow them.
enum TickRuns {
    /// Appends ticks `firstSeq, firstSeq + 1, …` at `ticks` (increasing), extending the last run where
    /// they continue it.
    static func append(_ db: any StoreStatements, ticks: [Int64], firstSeq: UInt64) throws {
        guard !ticks.isEmpty else { return }
        var last = try db.rows("SELECT first_seq, first_t, interval_ms, count FROM tick_runs ORDER BY first_seq DESC LIMIT 1").first.map(Run.init)
        let stored = last
        var done: [Run] = []
        for (i, t) in ticks.enumerated() {
            let seq = firstSeq + UInt64(i)
            if var run = last, run.nextSeq == seq, run.admits(t) {
                if run.count == 1 { run.interval = t - run.firstT }
                run.count += 1
                last = run
            } else {
                if let run = last { done.append(run) }
                last = Run(firstSeq: seq, firstT: t, interval: 0, count: 1)
            }
        }
        if let run = last { done.append(run) }
        for run in done where run != stored {
            try db.execute("""
                INSERT INTO tick_runs(first_seq, first_t, interval_ms, count) VALUES (?, ?, ?, ?)
                ON CONFLICT(first_seq) DO UPDATE SET first_t = excluded.first_t, interval_ms = excluded.interval_ms, count = excluded.count
                """, [Int64(run.firstSeq), run.firstT, run.interval, run.count])
        }
    }

    struct Run: Equatable {
        var firstSeq: UInt64
        var firstT: Int64
        var interval: Int64
        var count: Int64
        var nextSeq: UInt64 { firstSeq + UInt64(count) }
        init(firstSeq: UInt64, firstT: Int64, interval: Int64, count: Int64) {
            (self.firstSeq, self.firstT, self.interval, self.count) = (firstSeq, firstT, interval, count)
        }
        /// A row of `first_seq, first_t, interval_ms, count`.
        init(_ row: SQLRow) throws {
            self.init(firstSeq: UInt64(try row.integer(0)), firstT: try row.integer(1), interval: try row.integer(2), count: try row.integer(3))
        }
        /// Whether a tick at `t` continues the run on its grid.
        func admits(_ t: Int64) -> Bool {
            count == 1 ? t > firstT : t == firstT + interval * count
        }
        func time(of seq: UInt64) -> Int64 { firstT + interval * Int64(seq - firstSeq) }
    }

    /// The newest sealed sequence number (0 when none).
    static func lastSealedSeq(_ db: any StoreStatements) throws -> UInt64 {
        UInt64(try db.value("SELECT first_seq + count - 1 FROM tick_runs ORDER BY first_seq DESC LIMIT 1")?.int64 ?? 0)
    }
}

extension TwinStore {
    /// The store's epoch for the sync protocol: a random id made by the first writer and kept for the
    /// life of the store (nil in a store no writer has begun a run in since schema v8).
    public func epoch() throws -> UInt64? {
        try database.read { db in try Self.meta(db, "sync_epoch").flatMap { UInt64($0, radix: 16) } }
    }

    static func ensureEpoch(_ db: any StoreStatements) throws {
        guard try meta(db, "sync_epoch") == nil else { return }
        try setMeta(db, "sync_epoch", String(UInt64.random(in: 1...UInt64.max), radix: 16))
    }

    /// Ticks by sequence number from `first`, at most `limit`, oldest first: the sealed ones from
    /// `tick_runs`, then those still in the log.
    public func ticks(from first: UInt64, limit: Int = 100_000) throws -> [(seq: UInt64, time: Int64)] {
        var out: [(UInt64, Int64)] = []
        let (sealedThrough, logTicks) = try withLogTicks { db -> UInt64 in
            let runs = try db.rows("""
                SELECT first_seq, first_t, interval_ms, count FROM tick_runs
                WHERE first_seq + count - 1 >= ? ORDER BY first_seq LIMIT ?
                """, [Int64(first), limit])
            for row in runs {
                let run = try TickRuns.Run(row)
                var seq = max(first, run.firstSeq)
                while seq < run.nextSeq, out.count < limit {
                    out.append((seq, run.time(of: seq)))
                    seq += 1
                }
            }
            return try TickRuns.lastSealedSeq(db)
        }
        for (i, t) in logTicks.enumerated() where out.count < limit {
            let seq = sealedThrough + 1 + UInt64(i)
            if seq >= first { out.append((seq, t)) }
        }
        return out
    }

    /// The sequence number of the newest committed tick (0 when none): what a hub holding all of this
    /// store's history has applied through.
    public func lastTickSeq() throws -> UInt64 {
        let (sealed, logTicks) = try withLogTicks { db in try TickRuns.lastSealedSeq(db) }
        return sealed + UInt64(logTicks.count)
    }

    /// Runs `body` in a read transaction together with the tick times of the head log after the sealed
    /// segment, read in the same transaction (as sample reads are).
    func withLogTicks<T>(_ body: (any StoreStatements) throws -> T) throws -> (T, [Int64]) {
        let (value, log) = try withLog(ids: [], from: .min, to: .max, body)
        return (value, log.ticks)
    }
}

/// A span of time whose raw samples were thinned to the rollups (disk cap): an explicit gap.
public struct RawGap: Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public var reason: String

    public init(from: Int64, to: Int64, reason: String) {
        self.from = from
        self.to = to
        self.reason = reason
    }
}

extension TwinStore {
    /// Holds what sync `destination` has not acknowledged: raw samples and state from `from` on are kept
    /// whatever the retention (the disk cap may still thin raw samples, recording a gap). Nil releases it.
    public func holdForSync(_ destination: String, from: Int64?) throws {
        try database.write { db in
            if let from { try Self.setMeta(db, "sync_hold:" + destination, String(from)) } else { try Self.deleteMeta(db, "sync_hold:" + destination) }
        }
    }

    /// Releases the holds of destinations not in `kept` (no longer configured).
    public func releaseSyncHolds(except kept: Set<String>) throws {
        try database.write { db in
            for row in try db.rows("SELECT key FROM meta WHERE key LIKE 'sync_hold:%'") {
                let key = try row.text(0)
                if !kept.contains(String(key.dropFirst("sync_hold:".count))) { try Self.deleteMeta(db, key) }
            }
        }
    }

    /// The thinned spans of `host` ('' : this store's own) overlapping `[from, to]`, oldest first.
    public func rawGaps(host: String = "", from: Int64 = .min, to: Int64 = .max) throws -> [RawGap] {
        try database.read { db in
            try db.rows("SELECT from_t, to_t, reason FROM raw_gaps WHERE host = ? AND to_t >= ? AND from_t <= ? ORDER BY from_t",
                        [host, from, to]).map { RawGap(from: try $0.integer(0), to: try $0.integer(1), reason: try $0.text(2)) }
        }
    }
}

/// How many of the ticks a window should hold the store holds, and why the others are missing.
public struct TickCompleteness: Sendable, Codable, Equatable {
    /// A stretch without stored ticks.
    public struct Gap: Sendable, Codable, Equatable {
        /// The last tick before it and the first after it (ms since the epoch; the window's ends where none).
        public var from: Int64
        public var to: Int64
        /// Ticks that would have been taken in between.
        public var missing: Int
        /// "not running" (no run of hosttwin covered it), or "not stored" (a run was on: collection paused, see its log).
        public var reason: String
    }

    public var from: Int64
    public var to: Int64
    public var interval: Int64
    public var expected: Int
    public var stored: Int
    public var gaps: [Gap]

    /// Share of the expected ticks stored (1 for an empty window).
    public var ratio: Double { expected == 0 ? 1 : min(1, Double(stored) / Double(expected)) }

    enum CodingKeys: String, CodingKey { case from, to, interval = "interval_ms", expected, stored, gaps }
}

extension TwinStore {
    /// The ticks stored in [from, to] against those the run's interval would have taken since the store's
    /// first run began (or `from`, if later), with each gap of more than one tick and its reason.
    /// Reads `tick_runs` rows and the head log's ticks: no per-tick rows.
    public func completeness(from: Int64, to: Int64) throws -> TickCompleteness? {
        let runs = try runs()
        guard let interval = runs.last?.interval, interval > 0, let firstStart = runs.first?.started else { return nil }
        let start = max(from, firstStart)
        guard to > start else { return TickCompleteness(from: start, to: to, interval: interval, expected: 0, stored: 0, gaps: []) }
        let (sealed, logTicks) = try withLogTicks { db in
            try db.rows("SELECT first_seq, first_t, interval_ms, count FROM tick_runs WHERE first_t <= ? AND first_t + interval_ms * (count - 1) >= ? ORDER BY first_seq",
                        [to, start]).map(TickRuns.Run.init)
        }
        // Stretches of regular ticks inside the window: (first, last, count).
        var stretches: [(first: Int64, last: Int64, count: Int)] = []
        for run in sealed {
            let step = max(run.interval, 1)
            let lo = run.firstT >= start ? 0 : (start - run.firstT + step - 1) / step
            let hi = min(run.count - 1, (to - run.firstT) / step)
            if run.count == 1 || run.interval == 0 {
                if run.firstT >= start && run.firstT <= to { stretches.append((run.firstT, run.firstT, 1)) }
            } else if hi >= lo {
                stretches.append((run.firstT + lo * step, run.firstT + hi * step, Int(hi - lo + 1)))
            }
        }
        for t in logTicks where t >= start && t <= to { stretches.append((t, t, 1)) }
        stretches.sort { $0.first < $1.first }
        let stored = stretches.reduce(0) { $0 + $1.count }
        var gaps: [TickCompleteness.Gap] = []
        func gap(_ a: Int64, _ b: Int64, edge: Bool) {
            let missing = Int((b - a) / interval) - (edge ? 0 : 1)
            guard missing > 0 else { return }
            // Not running: no run was on through the whole stretch (one stopped or died before it, the next began after).
            // A run without a stop is on until its last seal, or until now if it is the newest.
            let covered = runs.contains { r in
                r.started <= a + interval && (r.stopped ?? (r.id == runs.last?.id ? .max : r.lastTick ?? .max)) >= b - interval
            }
            gaps.append(.init(from: a, to: b, missing: missing, reason: covered ? "not stored" : "not running"))
        }
        // Before the first stored tick: a run's start is like a tick (its first is due an interval later, after
        // the collectors' warm-up), a window's start cut into a run is not.
        var last = start - interval
        for s in stretches {
            if s.first - last > interval * 3 / 2 {
                let leading = last == start - interval
                gap(leading ? start : last, s.first, edge: leading && start != firstStart)
            }
            last = max(last, s.last)
        }
        if to - last > interval * 2 { gap(last, to, edge: true) }
        // The slots in (start, to]: a run's first tick is the first slot after its start, which is off the grid.
        let expected = Int(Self.floorDiv(to, interval) - Self.floorDiv(start, interval))
        return TickCompleteness(from: start, to: to, interval: interval, expected: expected, stored: min(stored, expected), gaps: gaps)
    }
}

/// One collector's runs in a window, from its `node_scrape_collector_success` samples: how many runs were
/// stored and how many succeeded. Ticks not stored at all are the tick completeness's gaps; this says which
/// collectors failed or found nothing inside the stored ones (thermal on a VM without sensors never succeeds).
public struct CollectorCompleteness: Sendable, Codable, Equatable {
    public var collector: String
    public var runs: Int
    public var succeeded: Int

    public init(collector: String, runs: Int, succeeded: Int) {
        (self.collector, self.runs, self.succeeded) = (collector, runs, succeeded)
    }

    /// Share of the stored runs that succeeded (1 without runs).
    public var ratio: Double { runs == 0 ? 1 : Double(succeeded) / Double(runs) }
}

extension TwinStore {
    /// Every local collector's stored runs in [from, to], by name, from the minute rollups (and the head).
    public func collectorCompleteness(from: Int64, to: Int64) throws -> [CollectorCompleteness] {
        let minute = StoragePolicy.minute
        let start = from / minute * minute
        guard to >= start else { return [] }
        let step = ((to - start) / minute + 1) * minute
        return try seriesCatalog().compactMap { s -> CollectorCompleteness? in
            guard s.key.metric == "node_scrape_collector_success", s.key.labels["host"] == nil, let name = s.key.labels["collector"] else { return nil }
            let points = try aggregate(id: s.id, from: start, to: to, step: step).points
            let runs = points.reduce(0) { $0 + $1.count }, succeeded = points.reduce(0) { $0 + $1.sum }
            return CollectorCompleteness(collector: name, runs: Int(runs), succeeded: Int(succeeded.rounded()))
        }.sorted { $0.collector < $1.collector }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
}
