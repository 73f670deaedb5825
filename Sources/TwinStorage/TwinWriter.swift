import Foundation
import GRDB
import TwinCore

/// The single writer of a store. Each tick's samples go to the log (one record, one `write(2)`) and to
/// the head's open chunks; state changes, new series and health changes go to SQLite in one transaction
/// (only on ticks that have any). At each head-window boundary the head is cut and handed to the
/// ``Sealer``, which seals, compacts and applies retention on its own thread.
///
/// Owned by one collection loop or importer; not thread-safe.
public final class TwinWriter {
    public let store: TwinStore
    public let policy: StoragePolicy
    private let report: @Sendable (String) -> Void
    private let afterSeal: @Sendable () -> Void
    private let log: LogWriter
    private var sealer: Sealer
    private var head = Head()
    private var seriesIDs: [SeriesKey: Int64] = [:]
    /// The previous tick's keys and ids in sample order. Collectors emit the same series in the same
    /// order tick after tick, with the same string storage, so comparing with the key at the same
    /// position is nearly free and skips hashing every key.
    private var lastKeys: [SeriesKey] = []
    private var lastIDs: [Int64] = []
    /// Whether `lastIDs` holds no series twice.
    private var lastTickUnique = false
    private var tracker = StateTracker()
    private var runID: Int64?
    private var lastTick: Int64 = .min
    /// The newest sample time written (ticks or batches).
    private var latest: Int64 = .min
    /// Bulk path: each series' newest sample time as of the last cut.
    private var seriesLastT: [Int64: Int64] = [:]
    private var lastHealth: [String: CollectorHealth] = [:]
    private var lockFD: Int32 = -1
    private var opened = false
    /// Head cuts of the bulk path happen when the head holds this many samples.
    public var maxHeadSamples = 4_000_000

    /// What one commit did.
    /// Head windows handed to the sealer and not sealed yet.
    public var sealQueueDepth: Int { sealer.depth }

    public struct TickResult: Sendable {
        public var samples: Int
        public var newSeries: Int
        public var events: [TwinEvent]
        /// Chunks handed to the sealer at this tick (non-zero at head-window boundaries).
        public var sealedChunks: Int
    }

    /// What one bulk append did.
    public struct BatchResult: Sendable {
        public var accepted = 0
        public var rejected = 0
        /// Why the first rejected sample was refused.
        public var firstRejection: String?
    }

    /// - Parameters:
    ///   - report: receives problems of the background sealer (disk full and recovery), from its thread.
    ///   - afterSeal: runs on the sealer thread after each sealed head window.
    public init(store: TwinStore, policy: StoragePolicy = StoragePolicy(), report: @escaping @Sendable (String) -> Void = { _ in },
                afterSeal: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.policy = policy
        self.report = report
        self.afterSeal = afterSeal
        self.log = LogWriter(dataDir: store.dataDir)
        self.sealer = Sealer(store: store, policy: policy, report: report, afterJob: afterSeal)
    }

    deinit {
        if opened { sealer.stop() }
        if lockFD >= 0 { close(lockFD) }
    }

    /// Takes the data directory's writer lock (`DIR/writer.lock`, an `flock`): one writer per store.
    /// The kernel releases it when the process dies, so a `kill -9` never leaves a stale lock.
    private func lock() throws {
        let path = store.dataDir + "/writer.lock"
        // Never follow a link planted in the directory: the lock file is written (the writer's pid).
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP { throw TwinError.unavailable("\(path) is a symbolic link; refusing to follow it (remove it)") }
            throw TwinError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
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

    /// Locks the store, recovers the log left by an earlier writer (its samples are sealed before
    /// anything else happens), starts the sealer and a new log segment. `begin` calls it; importers call
    /// it directly.
    public func open() throws {
        precondition(!opened, "writer opened twice")
        try policy.validate()
        try lock()
        let last = try recover()
        latest = last ?? .min
        sealer.start()
        let next = max(LogSegment.list(store.dataDir).last?.seq ?? 0, try sealedSegment()) + 1
        try log.start(seq: next)
        opened = true
    }

    private func sealedSegment() throws -> UInt64 {
        try store.pool.write { db in try TwinStore.meta(db, "log_sealed").flatMap { UInt64($0) } ?? 0 }
    }

    /// Replays unsealed log segments and seals them on this thread. A torn tail of the newest segment
    /// (a power loss mid-write) is cut off; damage anywhere else stops the start with an error naming
    /// the file, since the records after it cannot be decoded: `hosttwin repair` salvages what precedes it.
    private func recover() throws -> Int64? {
        let sealed = try sealedSegment()
        let segments = LogSegment.list(store.dataDir).filter { $0.seq > sealed }
        var newest: Int64?
        for s in LogSegment.list(store.dataDir) where s.seq <= sealed { unlink(s.path) } // sealed before a crash
        var replay = Head()
        for (i, seg) in segments.enumerated() {
            let scan = try LogSegment.scan(seg.path) { id, t, v in
                try? replay.append(slot: replay.slot(id), t, v)
                if newest == nil || t > newest! { newest = t }
            }
            if let damage = scan.damage {
                guard i == segments.count - 1 else {
                    throw TwinError.corrupt(what: seg.path, detail: "\(damage); the records after it cannot be read. Run `hosttwin repair --data-dir \(store.dataDir)` to keep what precedes it")
                }
                report("log segment \(seg.path): \(damage); cut at byte \(scan.validBytes), \(scan.fileBytes - scan.validBytes) bytes dropped")
                _ = truncate(seg.path, off_t(scan.validBytes))
            }
        }
        let storedLast = try store.pool.write { db in try TwinStore.lastSealedTick(db) }
        guard let through = segments.last?.seq else { return [storedLast, newest].compactMap { $0 }.max() }
        let lastRun = try store.pool.write { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM runs") }
        let all = [storedLast, newest].compactMap { $0 }.max()
        sealer.enqueue(.init(chunks: replay.cut(), throughSegment: through, latest: all ?? 0, runID: lastRun))
        try sealer.runNow()
        return all
    }

    /// Starts a run: opens the writer, loads the open versions (series ids are looked up as they are first
    /// seen), records the start and, when an earlier run ended without a clean stop or time passed since
    /// it, a `gap` event.
    public func begin(now: Int64, interval: Int64) throws {
        try open()
        try store.pool.write { db in
            var current: [EntityKind: [String: StateTracker.Open]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, kind, key, valid_from, attributes FROM versions WHERE valid_to IS NULL") {
                guard let kind = EntityKind(rawValue: row["kind"]) else { continue }
                let attrs = try store.attributes(kind, row["attributes"], where: "versions row \(row["id"] as Int64)")
                current[kind, default: [:]][store.key(kind, row["key"])] = .init(attributes: attrs, rowID: row["id"], validFrom: row["valid_from"])
            }
            tracker = StateTracker(current: current)
            let prev = try Row.fetchOne(db, sql: "SELECT id, last_tick, stopped FROM runs ORDER BY id DESC LIMIT 1")
            let prevLast = try TwinStore.lastSealedTick(db)
            lastTick = prevLast ?? .min
            if let prevLast {
                let clean = (prev?["stopped"] as Int64?) != nil
                let message = clean
                    ? "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin was stopped)"
                    : "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin ended without a clean stop)"
                try Self.insertEvent(db, TwinEvent(time: now, type: .gap, message: message))
            }
            try db.execute(sql: "INSERT INTO runs(started, interval_ms) VALUES (?, ?)", arguments: [now, interval])
            runID = db.lastInsertedRowID
            try Self.insertEvent(db, TwinEvent(time: now, type: .started, message: "run \(runID!) started, interval \(interval) ms"))
        }
    }

    /// Commits one tick. Ticks must come in increasing time order; an out-of-order tick (the clock
    /// stepped back) is refused with an error and nothing is written. When the write fails (disk full),
    /// nothing of the tick is acknowledged and the store stays as it was.
    @discardableResult
    public func commit(_ obs: Observation, health: [CollectorHealth] = []) throws -> TickResult {
        let t = obs.timestamp
        guard t > lastTick else {
            throw TwinError.badInput("tick at \(TwinTime.rfc3339(t)) is not after the last stored tick \(TwinTime.rfc3339(lastTick)); skipped (clock stepped back?)")
        }
        var result = TickResult(samples: obs.samples.count, newSeries: 0, events: [], sealedChunks: 0)
        if let oldest = head.oldest, floorDiv(t, policy.headWindow) != floorDiv(oldest, policy.headWindow) {
            result.sealedChunks = try cut()
        }
        let delta = tracker.delta(for: obs)
        result.events = delta.events
        let changedHealth = health.filter { lastHealth[$0.collector]?.status != $0.status || lastHealth[$0.collector]?.message != $0.message }

        // Series ids: by position first, then the in-memory index, then the store.
        var keys: [SeriesKey] = []
        var ids: [Int64] = []
        keys.reserveCapacity(obs.samples.count)
        ids.reserveCapacity(obs.samples.count)
        var unknown: [Int] = []
        var positional = 0
        for (i, s) in obs.samples.enumerated() {
            keys.append(s.key)
            if i < lastKeys.count, lastKeys[i] == s.key {
                ids.append(lastIDs[i])
                positional += 1
            } else if let known = seriesIDs[s.key] { ids.append(known) } else {
                ids.append(-1)
                unknown.append(i)
            }
        }
        // 1. New series get their ids (rows in `series`; harmless if the tick fails after this).
        var learned: [SeriesKey: Int64] = [:]
        if !unknown.isEmpty {
            try writeTransaction { db in
                for i in unknown {
                    let key = obs.samples[i].key
                    if let id = learned[key] { ids[i] = id; continue }
                    let id = try Self.resolve(db, key, type: obs.types[key.metric] ?? .gauge).0
                    learned[key] = id
                    ids[i] = id
                }
            }
        }
        // Only now, after the commit: after a rollback (disk full) SQLite would hand those ids out again.
        seriesIDs.merge(learned) { _, new in new }
        result.newSeries = Set(learned.values).count
        // 2. Samples: one log record, then the head. A series observed twice in one tick keeps its first value.
        var logIDs = ids
        var values = obs.samples.map(\.value)
        // The same series list as the last tick, which had no repeats, has none either.
        let unique = (positional == ids.count && ids.count == lastIDs.count && lastTickUnique) || Set(ids).count == ids.count
        if !unique {
            var seen = Set<Int64>()
            var keep: [Int] = []
            for (i, id) in ids.enumerated() where seen.insert(id).inserted { keep.append(i) }
            logIDs = keep.map { ids[$0] }
            values = keep.map { values[$0] }
        }
        if !logIDs.isEmpty {
            try log.appendTick(t, ids: logIDs, values: values)
            for (id, v) in zip(logIDs, values) { try? head.append(slot: head.slot(id), t, v) }
        }
        lastTick = t
        latest = max(latest, t)
        lastKeys = keys
        lastIDs = ids
        lastTickUnique = unique
        // 3. State. If this fails the samples stay stored; the tracker keeps the old state, so the next
        // tick records the change instead.
        var opened: [Int64] = []
        if !delta.isEmpty || !changedHealth.isEmpty {
            try writeTransaction { db in
                for c in delta.close {
                    try db.cachedStatement(sql: "UPDATE versions SET valid_to = ?, span = ? WHERE id = ?").execute(arguments: [t, SpanClass.of(t - c.validFrom), c.rowID])
                }
                let cipher = store.cipher
                for e in delta.open {
                    let (key, attrs) = cipher.map { ($0.seal(e.kind, key: e.key), $0.seal(e.kind, e.attributes)) } ?? (e.key, e.attributes)
                    try db.cachedStatement(sql: "INSERT INTO versions(kind, key, valid_from, attributes) VALUES (?, ?, ?, ?)").execute(
                        arguments: [e.kind.rawValue, key, t, try AttributeJSON.encode(attrs)])
                    opened.append(db.lastInsertedRowID)
                }
                for h in changedHealth {
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO health(collector, status, message, duration_us, t) VALUES (?, ?, ?, ?, ?)").execute(
                        arguments: [h.collector, h.status.rawValue, h.message, h.durationMicros, t])
                }
            }
        }
        for h in changedHealth { lastHealth[h.collector] = h }
        tracker.apply(delta, opened: opened, at: t)
        return result
    }

    /// The id of series `key`, created when new. For bulk ingest, which keeps its own cache.
    public func seriesID(for key: SeriesKey, type: MetricType) throws -> Int64 {
        if let id = seriesIDs[key] { return id }
        let (id, created) = try store.pool.write { db in try Self.resolve(db, key, type: type) }
        seriesIDs[key] = id
        if created { seriesLastT[id] = Head.unknown } // nothing stored: no need to look
        return id
    }

    /// The ids of many series, created where new, in one transaction.
    public func seriesIDs(for keys: [(SeriesKey, MetricType)]) throws -> [Int64] {
        let resolved = try store.pool.write { db in try keys.map { try Self.resolve(db, $0.0, type: $0.1) } }
        for (i, (id, created)) in resolved.enumerated() {
            seriesIDs[keys[i].0] = id
            if created { seriesLastT[id] = Head.unknown }
        }
        return resolved.map(\.0)
    }

    /// The series' id, and whether it was created now.
    private static func resolve(_ db: Database, _ key: SeriesKey, type: MetricType) throws -> (Int64, Bool) {
        let labels = encodeLabels(key.labels)
        let hash = SeriesHash.of(metric: key.metric, labels: labels)
        if let id = try TwinStore.seriesID(db, hash: hash, metric: key.metric, labels: labels) { return (id, false) }
        try db.cachedStatement(sql: "INSERT INTO series(hash, metric, labels, type) VALUES (?, ?, ?, ?)").execute(arguments: [hash, key.metric, labels, type.rawValue])
        return (db.lastInsertedRowID, true)
    }

    /// Bulk ingest: appends `(series id, time, value)` samples in any series order. A sample not after its
    /// series' newest stored sample is refused (counted in the result); the rest are durable when this returns.
    @discardableResult
    public func append(batch: [(Int64, Int64, Double)]) throws -> BatchResult {
        var result = BatchResult()
        var accepted: [(Int64, Int64, Double)] = []
        var slots: [Int] = []
        accepted.reserveCapacity(batch.count)
        slots.reserveCapacity(batch.count)
        for s in batch {
            let slot = head.slot(s.0)
            var last = head.accepted[slot]
            if last == Head.unknown {
                last = try head.lastTime(slot: slot) ?? seriesLastT[s.0] ?? storedNewest(s.0) ?? Head.unknown
            }
            guard s.1 > last || last == Head.unknown else {
                head.accepted[slot] = last
                result.rejected += 1
                if result.firstRejection == nil {
                    result.firstRejection = "series \(s.0): sample at \(TwinTime.rfc3339(s.1)) is not after its newest sample at \(TwinTime.rfc3339(last))"
                }
                continue
            }
            head.accepted[slot] = s.1
            accepted.append(s)
            slots.append(slot)
        }
        guard !accepted.isEmpty else { return result }
        do { try log.appendBatch(accepted) } catch {
            head.resetAccepted()
            throw error
        }
        for (i, (_, t, v)) in accepted.enumerated() {
            try head.append(slot: slots[i], t, v)
            if t > latest { latest = t }
        }
        result.accepted = accepted.count
        if head.samples >= maxHeadSamples { try cut() }
        return result
    }

    /// The newest sealed sample time of series `id` (bulk path, once per series and head window).
    private func storedNewest(_ id: Int64) throws -> Int64? {
        try store.pool.write { db in try Int64.fetchOne(db, sql: "SELECT max(max_t) FROM chunks WHERE series_id = ?", arguments: [id]) }
    }

    /// Freezes the head, starts a new log segment and queues the frozen chunks for sealing. Returns
    /// the number of chunks queued.
    @discardableResult
    public func cut() throws -> Int {
        guard head.samples > 0 else { return 0 }
        let through = log.seq
        try log.start(seq: through + 1)
        let frozen = head.cut()
        if !seriesLastT.isEmpty || runID == nil { // bulk path: remember each series' newest time across the cut
            for f in frozen { seriesLastT[f.seriesID] = f.chunk.lastTime }
        }
        sealer.enqueue(.init(chunks: frozen, throughSegment: through, latest: latest, runID: runID))
        evictIdleSeries(active: Set(frozen.map(\.seriesID)))
        return frozen.count
    }

    /// Cuts the head and waits until the sealer has written everything (import's end).
    public func flush() throws {
        try cut()
        let left = sealer.stop()
        sealer = Sealer(store: store, policy: policy, report: report, afterJob: afterSeal)
        sealer.start()
        guard left == 0 else { throw TwinError.unavailable("\(left) head windows could not be sealed yet; they stay in the log and are sealed at the next start") }
    }

    /// Keeps in memory only the series seen in the last head window: series of processes that ended
    /// would otherwise accumulate for as long as `run` runs.
    private func evictIdleSeries(active: Set<Int64>) {
        seriesIDs = seriesIDs.filter { active.contains($0.value) }
    }

    /// Ends the run cleanly: seals the head and records the stop.
    public func finish(now: Int64) throws {
        try cut()
        let left = sealer.stop()
        opened = false
        try log.closeSegment()
        if left == 0, let seg = LogSegment.list(store.dataDir).last, seg.seq == log.seq,
           (try? FileManager.default.attributesOfItem(atPath: seg.path)[.size] as? Int) == LogSegment.headerSize {
            unlink(seg.path)
            try store.pool.write { db in try TwinStore.setMeta(db, "log_sealed", String(seg.seq)) }
        }
        try store.pool.write { db in
            if let runID {
                try db.execute(sql: "UPDATE runs SET last_tick = max(coalesce(last_tick, 0), ?), stopped = ? WHERE id = ?", arguments: [lastTick, now, runID])
                try Self.insertEvent(db, TwinEvent(time: now, type: .stopped, message: "run \(runID) stopped"))
            }
        }
        // Fold the WAL into the database so a stopped store is one file; failing that is harmless.
        store.pool.writeWithoutTransaction { db in _ = try? db.checkpoint(.truncate) }
        if lockFD >= 0 { close(lockFD); lockFD = -1 }
        if left > 0 { throw TwinError.unavailable("\(left) head windows could not be sealed; they stay in the log and are sealed at the next start") }
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
