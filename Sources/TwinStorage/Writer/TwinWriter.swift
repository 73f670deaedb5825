import Foundation
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
    private var log: any HeadLogWriter
    private var sealer: Sealer
    /// The writer's own connection when hubs share the database: it holds the hub's locks, and the log
    /// rows, applied state and seals go through it (``WriterSession``).
    private var session: (any WriterSession)?
    /// The hosts this hub holds the lock of (``claim(host:)``), and when it last looked for the head logs
    /// of hubs that stopped.
    private var claimed: Set<String> = []
    private var orphansCheckedAt: ContinuousClock.Instant?
    var head = Head()
    private var index = WriterSeriesIndex()
    var state = StateWriter()
    private var runID: Int64?
    private var lastTick: Int64 = .min
    /// The newest sample time written (ticks or batches).
    var latest: Int64 = .min
    /// Bulk path: each series' newest sample time as of the last cut.
    private var seriesLastT: [Int64: Int64] = [:]
    private var lock: DirectoryLock?
    /// The sequence number of the last committed tick (sync positions), and the ticks since the last cut.
    public private(set) var lastSeq: UInt64 = 0
    private var headTicks: [Int64] = []
    /// The time of the last ``commitState(_:)`` (a tick after it must be later).
    private var lastStateCommit: Int64 = .min
    /// When closed versions were last handed to the sealer for packing (every minute of ticks).
    private var lastPackRequest: Int64 = .min
    private var opened = false
    /// Head cuts of the bulk path happen when the head holds this many samples.
    public var maxHeadSamples = 4_000_000

    /// Head windows handed to the sealer and not sealed yet.
    public var sealQueueDepth: Int { sealer.depth }

    /// What one commit did.
    public struct TickResult: Sendable {
        /// The tick's sequence number in the store's epoch.
        public var seq: UInt64 = 0
        public var samples: Int
        public var newSeries: Int
        public var events: [TwinEvent]
        /// Chunks handed to the sealer at this tick (non-zero at head-window boundaries).
        public var sealedChunks: Int
        /// What was stored, for sinks that forward it (an agent's uplink): series ids and values as
        /// logged (a series twice in the tick kept once), and the versions opened and closed.
        public var ids: [Int64] = []
        public var values: [Double] = []
        public var opened: [Entity] = []
        public var closed: [(kind: EntityKind, key: String)] = []
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
        switch store.headLog {
        case .files: log = LogWriter(dataDir: store.dataDir)
        case .table(let hub): log = LogTable.Writer(database: store.database, hub: hub)
        }
        self.sealer = Sealer(store: store, policy: policy, report: report, afterJob: afterSeal)
    }

    deinit {
        if opened { sealer.stop() }
    }

    /// Locks the store, recovers the log left by an earlier writer (its samples are sealed before
    /// anything else happens), starts the sealer and a new log segment. `begin` calls it; importers call
    /// it directly.
    public func open() throws {
        precondition(!opened, "writer opened twice")
        try policy.validate()
        lock = try DirectoryLock.acquire(dataDir: store.dataDir)
        if case .table(let hub) = store.headLog, let s = try store.database.writerSession() {
            guard try s.tryLock(HubLocks.hub(hub)) else {
                throw TwinError.unavailable("a hub named \"\(hub)\" is running on this database (it holds that name's lock); give this one another --hub-name")
            }
            session = s
            log = LogTable.Writer(database: s, hub: hub)
            sealer = Sealer(store: store, writes: s, policy: policy, report: report, afterJob: afterSeal)
        }
        let last = try recover()
        latest = last ?? .min
        lastSeq = try store.database.write { db in try TickRuns.lastSealedSeq(db) }
        sealer.start()
        try sealOrphanedLogs()
        let newest: UInt64?
        switch store.headLog {
        case .files: newest = LogSegment.list(store.dataDir).last?.seq
        case .table(let hub): newest = try store.database.read { db in try LogTable.newestSegment(db, hub: hub) }
        }
        _ = try log.start(seq: max(newest ?? 0, try store.sealedSegment()) + 1) // no segment open before
        opened = true
    }

    /// Seals what an earlier writer left in the log, on this thread, before anything else happens.
    private func recover() throws -> Int64? {
        let replay: LogRecovery
        switch store.headLog {
        case .files: replay = try LogRecovery.replay(dataDir: store.dataDir, sealed: try store.sealedSegment(), report: report)
        case .table(let hub): replay = try LogTable.replay(store.database, hub: hub)
        }
        let storedLast = try store.database.write { db in try TwinStore.lastSealedTick(db) }
        let all = [storedLast, replay.newest].compactMap { $0 }.max()
        guard let through = replay.throughSegment else { return all }
        let lastRun = try store.database.write { db in try db.value("SELECT max(id) FROM runs")?.int64 }
        var head = replay.head
        let sealedSeq = try store.database.write { db in try TickRuns.lastSealedSeq(db) }
        sealer.enqueue(.init(chunks: head.cut(), throughSegment: through, latest: all ?? 0, runID: lastRun, ticks: replay.ticks, firstSeq: sealedSeq + 1))
        try sealer.runNow()
        return all
    }

    /// Starts a run: opens the writer, loads the open versions (series ids are looked up as they are first
    /// seen), records the start and, when an earlier run ended without a clean stop or time passed since
    /// it, a `gap` event.
    public func begin(now: Int64, interval: Int64) throws {
        try open()
        try store.database.write { db in
            try state.load(db, store: store)
            try TwinStore.ensureEpoch(db)
            let prev = try db.rows("SELECT stopped FROM runs ORDER BY id DESC LIMIT 1").first
            let prevLast = try TwinStore.lastSealedTick(db)
            lastTick = prevLast ?? .min
            if let prevLast {
                let clean = prev?[0].int64 != nil
                let message = clean
                    ? "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin was stopped)"
                    : "no observations from \(TwinTime.rfc3339(prevLast)) to \(TwinTime.rfc3339(now)) (HostTwin ended without a clean stop)"
                try StateWriter.insertEvent(db, TwinEvent(time: now, type: .gap, message: message))
            }
            runID = try db.insert("INSERT INTO runs(started, interval_ms) VALUES (?, ?)", [now, interval])
            try StateWriter.insertEvent(db, TwinEvent(time: now, type: .started, message: "run \(runID!) started, interval \(interval) ms"))
        }
    }

    /// Commits one tick. Ticks must come in increasing time order; an out-of-order tick (the clock
    /// stepped back) is refused with an error and nothing is written. When the write fails (disk full),
    /// nothing of the tick is acknowledged and the store stays as it was.
    @discardableResult
    public func commit(_ obs: Observation, health: [CollectorHealth] = []) throws -> TickResult {
        let t = obs.timestamp
        guard t > lastTick, t > lastStateCommit else {
            let last = lastTick >= lastStateCommit ? "the last stored tick \(TwinTime.rfc3339(lastTick))" : "the last stored change \(TwinTime.rfc3339(lastStateCommit))"
            throw TwinError.badInput("tick at \(TwinTime.rfc3339(t)) is not after \(last); skipped (clock stepped back?)")
        }
        var result = TickResult(samples: obs.samples.count, newSeries: 0, events: [], sealedChunks: 0)
        if let oldest = head.oldest, floorDiv(t, policy.headWindow) != floorDiv(oldest, policy.headWindow) {
            result.sealedChunks = try cut()
        }
        let delta = state.tracker.delta(for: obs)
        result.events = delta.events
        let changedHealth = state.changedHealth(health)

        var lookup = index.lookup(obs.samples)
        // 1. New series get their ids (rows in `series`; harmless if the tick fails after this).
        var learned: [SeriesKey: Int64] = [:]
        if !lookup.unknown.isEmpty {
            try writeTransaction { db in
                for i in lookup.unknown {
                    let key = obs.samples[i].key
                    if let id = learned[key] { lookup.ids[i] = id; continue }
                    let id = try WriterSeriesIndex.resolve(db, key, type: obs.types[key.metric] ?? .gauge).0
                    learned[key] = id
                    lookup.ids[i] = id
                }
            }
        }
        index.learn(learned)
        result.newSeries = Set(learned.values).count
        // 2. Samples: one log record, then the head. A series observed twice in one tick keeps its first value.
        var logIDs = lookup.ids
        var values = obs.samples.map(\.value)
        let unique = index.isUnique(lookup)
        if !unique {
            var seen = Set<Int64>()
            var keep: [Int] = []
            for (i, id) in lookup.ids.enumerated() where seen.insert(id).inserted { keep.append(i) }
            logIDs = keep.map { lookup.ids[$0] }
            values = keep.map { values[$0] }
        }
        // Every tick is a record, also without samples: it has a sequence number.
        try log.appendTick(t, ids: logIDs, values: values)
        for (id, v) in zip(logIDs, values) { try? head.append(slot: head.slot(id), t, v) }
        store.recentMinutes.add(t, ids: logIDs, values: values)
        lastSeq += 1
        headTicks.append(t)
        result.seq = lastSeq
        result.ids = logIDs
        result.values = values
        result.opened = delta.open
        result.closed = delta.close.map { ($0.kind, $0.key) }
        lastTick = t
        latest = max(latest, t)
        index.remember(lookup, unique: unique)
        // 3. State. If this fails the samples stay stored; the tracker keeps the old state, so the next
        // tick records the change instead.
        var opened: [Int64] = []
        if !delta.isEmpty || !changedHealth.isEmpty {
            let cipher = store.cipher
            try writeTransaction { db in opened = try state.write(db, delta, health: changedHealth, at: t, cipher: cipher) }
        }
        state.applied(delta, opened: opened, health: changedHealth, at: t)
        if !delta.close.isEmpty { requestPacking(at: t) }
        return result
    }

    /// Stores a change-driven observation between two ticks: its entities only (no samples, no tick record,
    /// no sequence number), as versions starting or ending at its time, kept after the last tick and the
    /// last such commit. The kinds it holds are compared in full, as at a tick. Returns the state events
    /// and the time used. Not for agents: their uplinks carry ticks only.
    public func commitState(_ obs: Observation) throws -> (events: [TwinEvent], time: Int64) {
        let t = max(obs.timestamp, lastTick + 1, lastStateCommit + 1)
        var at = obs
        at.timestamp = t
        let delta = state.tracker.delta(for: at)
        guard !delta.isEmpty else {
            state.applied(delta, opened: [], health: [], at: t)
            return ([], t)
        }
        var opened: [Int64] = []
        let cipher = store.cipher
        try writeTransaction { db in opened = try state.write(db, delta, health: [], at: t, cipher: cipher) }
        state.applied(delta, opened: opened, health: [], at: t)
        lastStateCommit = t
        if !delta.close.isEmpty { requestPacking(at: t) }
        return (delta.events, t)
    }

    /// Asks the sealer to pack the versions closed before `t`, at most once a minute of data time.
    func requestPacking(at t: Int64) {
        guard lastPackRequest == .min || t - lastPackRequest >= StoragePolicy.minute else { return }
        sealer.enqueue(.init(chunks: [], throughSegment: 0, latest: t, runID: nil, packOnly: true))
        lastPackRequest = t
    }

    /// The id of series `key`, created when new. For bulk ingest, which keeps its own cache.
    public func seriesID(for key: SeriesKey, type: MetricType) throws -> Int64 {
        if let id = index[key] { return id }
        let (id, created) = try store.database.write { db in try WriterSeriesIndex.resolve(db, key, type: type) }
        index.learn(key, id)
        if created { seriesLastT[id] = Head.unknown } // nothing stored: no need to look
        return id
    }

    /// The ids of many series, created where new, in one transaction.
    public func seriesIDs(for keys: [(SeriesKey, MetricType)]) throws -> [Int64] {
        let resolved = try store.database.write { db in try WriterSeriesIndex.resolveAll(db, keys) }
        for (i, (id, created)) in resolved.enumerated() {
            index.learn(keys[i].0, id)
            if created { seriesLastT[id] = Head.unknown }
        }
        return resolved.map(\.0)
    }

    /// Records the `# HELP` texts of metric families (imported text keeps them): `/api/v1/metadata` shows them.
    public func recordHelp(_ help: [String: String]) throws {
        guard !help.isEmpty else { return }
        try store.database.write { db in
            for (name, text) in help {
                try db.execute("INSERT INTO metric_help(name, help) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET help = excluded.help", [name, String(text.prefix(4096))])
            }
        }
    }

    /// Bulk ingest: appends `(series id, time, value)` samples in any series order. A sample not after its
    /// series' newest stored sample is refused (counted in the result); the rest are durable when this returns.
    @discardableResult
    public func append(batch: [(Int64, Int64, Double)]) throws -> BatchResult {
        var result = BatchResult()
        store.recentMinutes.disable()
        let admitted = try head.admit(batch) { id in try seriesLastT[id] ?? storedNewest(id) }
        result.rejected = admitted.rejected
        if let r = admitted.firstRejection {
            result.firstRejection = "series \(r.id): sample at \(TwinTime.rfc3339(r.t)) is not after its newest sample at \(TwinTime.rfc3339(r.last))"
        }
        guard !admitted.accepted.isEmpty else { return result }
        do { try log.appendBatch(admitted.accepted) } catch {
            head.resetAccepted()
            throw error
        }
        latest = max(latest, try head.append(admitted.accepted, slots: admitted.slots))
        result.accepted = admitted.accepted.count
        if head.samples >= maxHeadSamples { try cut() }
        return result
    }

    /// The newest sealed sample time of series `id` (bulk path, once per series and head window).
    private func storedNewest(_ id: Int64) throws -> Int64? {
        try store.database.read { db in
            // The group's rows newest first; once a row ends before the best found, no older row can beat it.
            var best: Int64?
            for (id: rowID, maxT: maxT) in try db.rows("SELECT id, max_t FROM chunks WHERE group_id = ? ORDER BY max_t DESC", [GroupBlock.group(of: id)])
                .map({ (id: try $0.integer(0), maxT: try $0.integer(1)) }) {
                if let b = best, maxT <= b { break }
                guard let row = try db.rows("SELECT \(TwinStore.chunkColumns) FROM chunks WHERE id = ?", [rowID]).first else { continue }
                if let s = try TwinStore.decodeChunkRow(row, only: [id])[id], let t = s.last?.0, best.map({ t > $0 }) ?? true { best = t }
            }
            return best
        }
    }

    /// Freezes the head, starts a new log segment and queues the frozen chunks for sealing. Returns
    /// the number of chunks queued.
    @discardableResult
    public func cut() throws -> Int {
        guard head.samples > 0 || !headTicks.isEmpty else { return 0 }
        let through = log.seq
        let finished = try log.start(seq: through + 1)
        let frozen = head.cut()
        if !seriesLastT.isEmpty || runID == nil { // bulk path: remember each series' newest time across the cut
            for f in frozen { seriesLastT[f.seriesID] = f.chunk.lastTime }
        }
        sealer.enqueue(.init(chunks: frozen, throughSegment: through, latest: latest, runID: runID,
                             ticks: headTicks, firstSeq: lastSeq + 1 - UInt64(headTicks.count), finishedSegment: finished))
        headTicks.removeAll(keepingCapacity: true)
        index.evictAllBut(Set(frozen.map(\.seriesID)))
        return frozen.count
    }

    /// Cuts the head and waits until the sealer has written everything (import's end).
    public func flush() throws {
        try cut()
        let left = sealer.stop()
        sealer = Sealer(store: store, writes: session, policy: policy, report: report, afterJob: afterSeal)
        sealer.start()
        guard left == 0 else { throw TwinError.unavailable("\(left) head windows could not be sealed yet; they stay in the log and are sealed at the next start") }
    }

    /// Ends the run cleanly: seals the head and records the stop.
    public func finish(now: Int64) throws {
        try cut()
        let left = sealer.stop()
        opened = false
        try log.closeSegment()
        if left == 0, store.headLog == .files, let seg = LogSegment.list(store.dataDir).last, seg.seq == log.seq,
           (try? FileManager.default.attributesOfItem(atPath: seg.path)[.size] as? Int) == LogSegment.headerSize {
            unlink(seg.path)
            try store.database.write { db in try TwinStore.setMeta(db, store.headLog.sealedMark, String(seg.seq)) }
        }
        try store.database.write { db in
            if let runID {
                try db.execute("UPDATE runs SET last_tick = \(SQLText.greatest(db.dialect))(coalesce(last_tick, 0), ?), stopped = ? WHERE id = ?", [lastTick, now, runID])
                try StateWriter.insertEvent(db, TwinEvent(time: now, type: .stopped, message: "run \(runID) stopped"))
            }
        }
        // Fold the WAL into the database so a stopped store is one file; failing that is harmless.
        store.checkpoint()
        session?.close() // its locks go with it
        claimed.removeAll()
        lock?.release()
        lock = nil
        if left > 0 { throw TwinError.unavailable("\(left) head windows could not be sealed; they stay in the log and are sealed at the next start") }
    }

    /// One write transaction of the store's database (through the writer's session when it has one).
    func writeTransaction(_ body: (any StoreStatements) throws -> Void) throws {
        try (session ?? store.database).write(body)
    }

    /// Whether this hub may write `host`'s ticks when several hubs share the database.
    public enum HostClaim: Sendable, Equatable {
        /// Held already (or the store has one writer only).
        case held
        /// Taken just now: another hub may have written the host since this one read its state.
        case taken
        /// Another running hub holds it.
        case elsewhere
    }

    /// Takes `host`'s lock for this hub unless another hub holds it. Taking one also seals the head logs
    /// that stopped hubs left (``sealOrphanedLogs()``), so what they acknowledged is sealed as this hub
    /// goes on.
    public func claim(host: String) throws -> HostClaim {
        guard let session else { return .held }
        if claimed.contains(host) { return .held }
        guard try session.tryLock(HubLocks.host(host)) else { return .elsewhere }
        claimed.insert(host)
        try sealOrphanedLogs()
        return .taken
    }

    /// Gives `host`'s lock up (taking the host over failed half-way: another hub may take it).
    public func release(host: String) {
        guard let session, claimed.remove(host) != nil else { return }
        try? session.unlock(HubLocks.host(host))
    }

    /// Seals the head-log rows of hubs that are not running (their name's lock is free): each is replayed
    /// and sealed under that name's lock, as the hub would at its next start. At most every 5 s.
    public func sealOrphanedLogs() throws {
        guard let session, case .table(let me) = store.headLog else { return }
        if let at = orphansCheckedAt, ContinuousClock.now - at < .seconds(5) { return }
        orphansCheckedAt = .now
        let others = try store.database.read { db in
            try db.rows("SELECT DISTINCT hub FROM head_log WHERE hub <> ?", [me]).map { try $0.text(0) }
        }
        for other in others {
            guard try session.tryLock(HubLocks.hub(other)) else { continue } // running: its rows are its own
            defer { try? session.unlock(HubLocks.hub(other)) }
            let replay = try LogTable.replay(store.database, hub: other)
            guard let through = replay.throughSegment else { continue }
            var head = replay.head
            let chunks = head.cut()
            try sealer.seal(.init(chunks: chunks, throughSegment: through, latest: replay.newest ?? 0, runID: nil, hub: other))
            report("sealed the head log of hub \"\(other)\", which is not running: \(chunks.reduce(0) { $0 + $1.chunk.count }) samples through segment \(through)")
        }
    }

    /// Loads `host`'s open versions again (its keys start with `host/`): another hub wrote it meanwhile.
    public func reloadOpenVersions(host: String) throws {
        try store.database.read { db in try state.reload(db, store: store, keyPrefix: host + "/") }
    }

    static func encodeLabels(_ l: Labels) -> String { l.text }

    static func decodeLabels(_ s: String) throws -> Labels {
        if s.isEmpty { return .empty }
        return try SeriesKey.parse("x" + s).labels
    }
}
