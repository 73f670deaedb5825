import Foundation
import GRDB
import TwinCore

/// The single writer of a store: turns each tick's ``Observation`` into one durable SQLite transaction
/// (head-log row for the samples, new series, state versions, events), and seals the head log into
/// compressed chunks every `sealWindow`.
///
/// Owned by one collection loop; not thread-safe.
public final class TwinWriter {
    public let store: TwinStore
    /// How much head log accumulates before it is sealed into chunks (ms).
    public var sealWindow: Int64
    private var seriesIDs: [SeriesKey: Int64] = [:]
    /// The previous tick's keys and ids in sample order. Collectors emit the same series in the same
    /// order tick after tick, with the same string storage, so comparing with the key at the same
    /// position is nearly free and skips hashing every key.
    private var lastKeys: [SeriesKey] = []
    private var lastIDs: [Int64] = []
    private var tracker = StateTracker()
    private var runID: Int64 = 0
    private var lastTick: Int64 = .min
    private var oldestLogTick: Int64?
    private var lastHealth: [String: CollectorHealth] = [:]

    /// What one commit did.
    public struct TickResult: Sendable {
        public var samples: Int
        public var newSeries: Int
        public var events: [TwinEvent]
        public var sealedChunks: Int
    }

    private var lockFD: Int32 = -1

    public init(store: TwinStore, sealWindow: Int64 = 600_000) {
        self.store = store
        self.sealWindow = sealWindow
    }

    deinit { if lockFD >= 0 { close(lockFD) } }

    /// Takes the data directory's writer lock (`DIR/writer.lock`, an `flock`): one writer per store.
    /// The kernel releases it when the process dies, so a `kill -9` never leaves a stale lock.
    private func lock() throws {
        let path = store.dataDir + "/writer.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TwinError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            close(fd)
            throw TwinError.unavailable("another HostTwin writer\(holder.isEmpty ? "" : " (pid \(holder))") is using \(store.dataDir); stop it or choose another --data-dir")
        }
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        lockFD = fd
    }

    /// Starts a run: loads the open versions (series ids are looked up as they are first seen), records the start and, when an
    /// earlier run ended without a clean stop or time passed since it, a `gap` event.
    public func begin(now: Int64, interval: Int64) throws {
        try lock()
        try store.pool.write { db in
            var current: [EntityKind: [String: StateTracker.Open]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, kind, key, valid_from, attributes FROM versions WHERE valid_to IS NULL") {
                guard let kind = EntityKind(rawValue: row["kind"]) else { continue }
                let attrs = try AttributeJSON.decode(row["attributes"], where: "versions row \(row["id"] as Int64)")
                current[kind, default: [:]][row["key"]] = .init(attributes: attrs, rowID: row["id"], validFrom: row["valid_from"])
            }
            tracker = StateTracker(current: current)
            let prev = try Row.fetchOne(db, sql: "SELECT id, last_tick, stopped FROM runs ORDER BY id DESC LIMIT 1")
            let prevLast = try TwinStore.lastTick(db)
            lastTick = prevLast ?? .min
            oldestLogTick = try Int64.fetchOne(db, sql: "SELECT min(t) FROM head_log")
            if let prevLast {
                let clean = (prev?["stopped"] as Int64?) != nil
                let message = clean
                    ? "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin was stopped)"
                    : "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin ended without a clean stop)"
                try Self.insertEvent(db, TwinEvent(time: now, type: .gap, message: message))
            }
            try db.execute(sql: "INSERT INTO runs(started, interval_ms) VALUES (?, ?)", arguments: [now, interval])
            runID = db.lastInsertedRowID
            try Self.insertEvent(db, TwinEvent(time: now, type: .started, message: "run \(runID) started, interval \(interval) ms"))
        }
    }

    /// Commits one tick. Ticks must come in increasing time order; an out-of-order tick (the clock
    /// stepped back) is refused with an error and nothing is written.
    @discardableResult
    public func commit(_ obs: Observation, health: [CollectorHealth] = []) throws -> TickResult {
        let t = obs.timestamp
        guard t > lastTick else {
            throw TwinError.badInput("tick at \(TwinTime.rfc3339(t)) is not after the last stored tick \(TwinTime.rfc3339(lastTick)); skipped (clock stepped back?)")
        }
        let delta = tracker.delta(for: obs)
        var newKeys: [SeriesKey] = []
        var result = TickResult(samples: obs.samples.count, newSeries: 0, events: delta.events, sealedChunks: 0)
        var opened: [Int64] = []
        let changedHealth = health.filter { lastHealth[$0.collector]?.status != $0.status || lastHealth[$0.collector]?.message != $0.message }
        // Ids learned in this transaction join the in-memory index only once it commits: after a rollback
        // (disk full, say) SQLite would hand the same ids to other series.
        var learned: [SeriesKey: Int64] = [:]
        var keys: [SeriesKey] = []
        var ids: [Int64] = []
        try writeTransaction { db in
            var pairs: [(Int64, Double)] = []
            pairs.reserveCapacity(obs.samples.count)
            var seenIDs = Set<Int64>(minimumCapacity: obs.samples.count)
            keys.reserveCapacity(obs.samples.count)
            ids.reserveCapacity(obs.samples.count)
            for (i, s) in obs.samples.enumerated() {
                let id: Int64
                if i < lastKeys.count, lastKeys[i] == s.key { id = lastIDs[i] }
                else if let known = seriesIDs[s.key] ?? learned[s.key] { id = known }
                else if let stored = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM series WHERE metric = ? AND labels = ?"),
                                                        arguments: [s.key.metric, Self.encodeLabels(s.key.labels)]) {
                    // Known to the store but evicted from memory (not seen for a seal window).
                    id = stored
                    learned[s.key] = id
                } else {
                    try db.cachedStatement(sql: "INSERT INTO series(metric, labels, type) VALUES (?, ?, ?)").execute(
                                   arguments: [s.key.metric, Self.encodeLabels(s.key.labels), (obs.types[s.key.metric] ?? .gauge).rawValue])
                    id = db.lastInsertedRowID
                    learned[s.key] = id
                    newKeys.append(s.key)
                }
                keys.append(s.key)
                ids.append(id)
                // A series observed twice in one tick keeps its first value.
                if seenIDs.insert(id).inserted { pairs.append((id, s.value)) }
            }
            if !pairs.isEmpty {
                try db.cachedStatement(sql: "INSERT INTO head_log(t, data) VALUES (?, ?)").execute(arguments: [t, Data(HeadLogRecord.encode(pairs))])
            }
            for c in delta.close {
                try db.cachedStatement(sql: "UPDATE versions SET valid_to = ? WHERE id = ?").execute(arguments: [t, c.rowID])
            }
            for e in delta.open {
                try db.cachedStatement(sql: "INSERT INTO versions(kind, key, valid_from, attributes) VALUES (?, ?, ?, ?)").execute(
                               arguments: [e.kind.rawValue, e.key, t, try AttributeJSON.encode(e.attributes)])
                opened.append(db.lastInsertedRowID)
            }
            for ev in delta.events { try Self.insertEvent(db, ev) }
            for h in changedHealth {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO health(collector, status, message, duration_us, t) VALUES (?, ?, ?, ?, ?)").execute(
                               arguments: [h.collector, h.status.rawValue, h.message, h.durationMicros, t])
            }
        }
        seriesIDs.merge(learned) { _, new in new }
        lastKeys = keys
        lastIDs = ids
        for h in changedHealth { lastHealth[h.collector] = h }
        result.newSeries = newKeys.count
        tracker.apply(delta, opened: opened, at: t)
        lastTick = t
        if oldestLogTick == nil { oldestLogTick = t }
        if let oldest = oldestLogTick, t - oldest >= sealWindow {
            result.sealedChunks = try seal()
        }
        return result
    }

    /// Moves every head-log row into per-series compressed chunks, in one transaction. Returns the
    /// number of chunks written.
    @discardableResult
    public func seal() throws -> Int {
        let sealed = try store.pool.write { db -> [Int64: XORChunkEncoder] in
            var perSeries: [Int64: XORChunkEncoder] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT t, data FROM head_log ORDER BY t")
            while let row = try rows.next() {
                let t: Int64 = row["t"]
                let data: Data = row["data"]
                let decoded: [(Int64, Double)]
                do { decoded = try HeadLogRecord.decode([UInt8](data)) } catch {
                    throw TwinError.corrupt(what: "twin.db head_log row t=\(t)", detail: "\(error)")
                }
                for (id, v) in decoded { try perSeries[id, default: XORChunkEncoder()].append(t, v) }
            }
            for (id, enc) in perSeries {
                try db.execute(sql: "INSERT OR REPLACE INTO chunks(series_id, min_t, max_t, count, data) VALUES (?, ?, ?, ?, ?)",
                               arguments: [id, enc.firstTime, enc.lastTime, enc.count, Data(enc.bytes)])
            }
            // The head log is the record of recent ticks; before it goes, the run's last tick moves to `runs`.
            if let last = try Int64.fetchOne(db, sql: "SELECT max(t) FROM head_log") {
                try db.execute(sql: "UPDATE runs SET last_tick = max(coalesce(last_tick, 0), ?) WHERE id = ?", arguments: [last, runID])
            }
            try db.execute(sql: "DELETE FROM head_log")
            return perSeries
        }
        oldestLogTick = nil
        evictIdleSeries(active: Set(sealed.keys))
        return sealed.count
    }

    /// Keeps in memory only the series seen in the last seal window: series of processes that ended
    /// would otherwise accumulate for as long as `run` runs.
    private func evictIdleSeries(active: Set<Int64>) {
        seriesIDs = seriesIDs.filter { active.contains($0.value) }
    }

    /// Ends the run cleanly: seals the head log and records the stop.
    public func finish(now: Int64) throws {
        try seal()
        try store.pool.write { db in
            try db.execute(sql: "UPDATE runs SET stopped = ? WHERE id = ?", arguments: [now, runID])
            try Self.insertEvent(db, TwinEvent(time: now, type: .stopped, message: "run \(runID) stopped"))
        }
        // Fold the WAL into the database so a stopped store is one file; failing that is harmless.
        store.pool.writeWithoutTransaction { db in _ = try? db.checkpoint(.truncate) }
        if lockFD >= 0 { close(lockFD); lockFD = -1 }
    }

    /// One write transaction on cached BEGIN/COMMIT statements: the per-tick path skips the bookkeeping of
    /// GRDB's general transaction API (observers, savepoints), which cost more than the inserts here.
    private func writeTransaction(_ body: (Database) throws -> Void) throws {
        try store.pool.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                try body(db)
                try db.cachedStatement(sql: "COMMIT").execute()
            } catch {
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }

    static func insertEvent(_ db: Database, _ e: TwinEvent) throws {
        let detail: String? = e.changes.isEmpty ? e.message : try AttributeJSON.encodeChanges(e.changes)
        try db.cachedStatement(sql: "INSERT INTO events(t, type, kind, key, detail) VALUES (?, ?, ?, ?, ?)").execute(
                       arguments: [e.time, e.type.rawValue, e.kind?.rawValue, e.key, detail])
    }

    static func encodeLabels(_ l: Labels) -> String { l.text }

    static func decodeLabels(_ s: String) throws -> Labels {
        if s.isEmpty { return .empty }
        return try SeriesKey.parse("x" + s).labels
    }
}
