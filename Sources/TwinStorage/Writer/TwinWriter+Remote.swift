import TwinCore

/// A tick received from another store (a hub applying an agent's batch), already in this store's terms:
/// series ids of this store, entity keys as this store keys them.
public struct RemoteTick: Sendable {
    public var time: Int64
    public var ids: [Int64]
    public var values: [Double]
    public var opened: [Entity]
    public var closed: [(kind: EntityKind, key: String)]

    public init(time: Int64, ids: [Int64], values: [Double], opened: [Entity], closed: [(kind: EntityKind, key: String)]) {
        self.time = time
        self.ids = ids
        self.values = values
        self.opened = opened
        self.closed = closed
    }
}

/// Where a sender's history stands in this store: the last applied tick of the sender's epoch, and the
/// sender's series refs learned with it (sync protocol, docs/format/sync.md).
public struct RemoteCursor: Sendable, Equatable {
    public var host: String
    public var epoch: UInt64
    public var appliedThrough: UInt64
    /// The time of the last applied tick (the sender's clock), and when this store last applied a batch.
    public var lastTime: Int64?
    public var updated: Int64?
    /// This store's clock minus the sender's, measured at the sender's last handshake.
    public var clockOffset: Int64?
    /// The datacenter the host is in (this hub's, or the relay's it came through), when named.
    public var datacenter: String?
    /// The newest tick the host's agent held at its last handshake with this hub.
    public var agentLatest: UInt64?
    /// Series refs of the sender first met in the ticks applied with this cursor, and this store's ids.
    public var newSeries: [Int64: Int64]
    /// The batch to keep in the outbox for upstream hubs and followers, written with the cursor.
    public var outbox: OutboxRow?
    /// Spans of the sender's ticks whose raw samples it thinned (its disk cap), recorded as its gaps.
    public var thinned: [RawGap] = []

    public init(host: String, epoch: UInt64, appliedThrough: UInt64, lastTime: Int64? = nil, updated: Int64? = nil, newSeries: [Int64: Int64] = [:]) {
        self.host = host
        self.epoch = epoch
        self.appliedThrough = appliedThrough
        self.lastTime = lastTime
        self.updated = updated
        self.newSeries = newSeries
    }
}

extension TwinStore {
    /// Every sender's cursor (a hub's view of its agents).
    public func remoteCursors() throws -> [RemoteCursor] { try remoteCursors(host: nil) }

    /// `host`'s cursor, if this store holds any of it.
    public func remoteCursor(host: String) throws -> RemoteCursor? { try remoteCursors(host: host).first }

    private func remoteCursors(host: String?) throws -> [RemoteCursor] {
        try database.read { db in
            try db.rows("SELECT host, epoch, applied_through, last_t, updated, clock_offset_ms, datacenter, agent_latest FROM sync_hosts"
                        + (host == nil ? "" : " WHERE host = ?") + " ORDER BY host", host.map { [$0] } ?? []).map {
                var c = RemoteCursor(host: try $0.text(0), epoch: UInt64(bitPattern: try $0.integer(1)), appliedThrough: UInt64(clamping: try $0.integer(2)),
                                     lastTime: $0[3].int64, updated: $0[4].int64)
                c.clockOffset = $0[5].int64
                c.datacenter = $0[6].string
                c.agentLatest = $0[7].int64.map { UInt64(max(0, $0)) }
                return c
            }
        }
    }

    /// The series refs of a sender's epoch and this store's ids for them.
    public func remoteSeries(host: String, epoch: UInt64) throws -> [Int64: Int64] {
        try database.read { db in
            var out: [Int64: Int64] = [:]
            for row in try db.rows("SELECT ref, series_id FROM sync_series WHERE host = ? AND epoch = ?", [host, Int64(bitPattern: epoch)]) {
                out[try row.integer(0)] = try row.integer(1)
            }
            return out
        }
    }

    /// Records what an agent's handshake says of `host`: the clock offset (this store's clock minus the
    /// sender's), the newest tick it holds and this hub's datacenter; nil leaves a value as it was.
    public func recordHello(host: String, clockOffset: Int64?, latest: UInt64?, datacenter: String?) throws {
        try database.write { db in
            // A host seen for the first time gets its row now, with nothing applied yet.
            try db.execute("""
                INSERT INTO sync_hosts(host, epoch, applied_through, updated, clock_offset_ms, agent_latest, datacenter) VALUES (?, 0, 0, ?, ?, ?, ?)
                ON CONFLICT(host) DO UPDATE SET clock_offset_ms = coalesce(excluded.clock_offset_ms, sync_hosts.clock_offset_ms),
                    agent_latest = coalesce(excluded.agent_latest, sync_hosts.agent_latest), datacenter = coalesce(excluded.datacenter, sync_hosts.datacenter)
                """, [host, TwinTime.nowMillis(), clockOffset, latest.map { Int64(clamping: $0) }, datacenter])
        }
    }

    /// Records hosts whose samples came by Prometheus remote_write (no agent): a fleet host row with epoch
    /// 0 and nothing applied when new, then the time of its newest sample (`newest`, by host) and now.
    public func recordRemoteWrite(newest: [String: Int64], datacenter: String?) throws {
        guard !newest.isEmpty else { return }
        let now = TwinTime.nowMillis()
        try database.write { db in
            let greatest = db.dialect == .postgres ? "greatest" : "max"
            for (host, t) in newest {
                try db.execute("""
                    INSERT INTO sync_hosts(host, epoch, applied_through, last_t, updated, datacenter) VALUES (?, 0, 0, ?, ?, ?)
                    ON CONFLICT(host) DO UPDATE SET last_t = \(greatest)(coalesce(sync_hosts.last_t, excluded.last_t), excluded.last_t), updated = excluded.updated,
                        datacenter = coalesce(sync_hosts.datacenter, excluded.datacenter)
                    """, [host, t, now, datacenter])
            }
        }
    }

    /// Saves the cursors of a group's parts, oldest first, with their outbox rows. SQLite: part by part.
    /// PostgreSQL: each table in one statement (the cursors of a host kept once, its newest; the outbox rows
    /// with ids reserved in part order), not a few round trips per part.
    static func save(_ parts: [RemoteCursor], _ db: any StoreStatements, now: Int64) throws {
        guard db.dialect == .postgres, parts.count > 1 else {
            for c in parts {
                try save(c, db, now: now)
                if let o = c.outbox { try append(o, db) }
            }
            return
        }
        var newest: [String: Int] = [:]
        for (i, c) in parts.enumerated() { newest[c.host] = i }
        let cursors = parts.indices.filter { newest[parts[$0].host] == $0 }.map { parts[$0] }
        try db.insertRows("sync_hosts", ["host", "epoch", "applied_through", "last_t", "updated"], cursors.map {
            [.text($0.host), .integer(Int64(bitPattern: $0.epoch)), .integer(Int64($0.appliedThrough)), $0.lastTime.sqlValue, .integer(now)]
        }, suffix: """
            ON CONFLICT(host) DO UPDATE SET epoch = excluded.epoch, applied_through = excluded.applied_through,
                last_t = excluded.last_t, updated = excluded.updated
            """)
        for c in parts { try saveGaps(c, db, now: now) }
        // A ref once per statement (ON CONFLICT cannot change one row twice), the newest part's id.
        struct Ref: Hashable { var host: String; var epoch: Int64; var ref: Int64 }
        var refs: [Ref: [SQLValue]] = [:]
        for c in parts {
            let epoch = Int64(bitPattern: c.epoch)
            for (ref, id) in c.newSeries { refs[Ref(host: c.host, epoch: epoch, ref: ref)] = [.text(c.host), .integer(epoch), .integer(ref), .integer(id)] }
        }
        try db.insertRows("sync_series", ["host", "epoch", "ref", "series_id"], Array(refs.values),
                          suffix: "ON CONFLICT(host, epoch, ref) DO UPDATE SET series_id = excluded.series_id")
        let rows = parts.compactMap(\.outbox)
        let ids = try db.reserveIDs("sync_outbox", rows.count)
        try db.insertRows("sync_outbox", ["id", "host", "epoch", "first_seq", "last_seq", "standalone", "applied_at", "batch"], zip(rows, ids).map { o, id in
            [.integer(id), .text(o.host), .integer(Int64(bitPattern: o.epoch)), .integer(Int64(o.firstSeq)), .integer(Int64(o.lastSeq)),
             o.standalone.sqlValue, .integer(o.appliedAt), .blob(o.batch)]
        })
    }

    static func save(_ c: RemoteCursor, _ db: any StoreStatements, now: Int64) throws {
        try db.execute("""
            INSERT INTO sync_hosts(host, epoch, applied_through, last_t, updated) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(host) DO UPDATE SET epoch = excluded.epoch, applied_through = excluded.applied_through,
                last_t = excluded.last_t, updated = excluded.updated
            """, [c.host, Int64(bitPattern: c.epoch), Int64(c.appliedThrough), c.lastTime, now])
        try saveGaps(c, db, now: now)
        // One statement for all of them (a round trip each on PostgreSQL; a host's first batch has hundreds).
        try db.insertRows("sync_series", ["host", "epoch", "ref", "series_id"],
                          c.newSeries.map { [.text(c.host), .integer(Int64(bitPattern: c.epoch)), .integer($0.key), .integer($0.value)] },
                          suffix: "ON CONFLICT(host, epoch, ref) DO UPDATE SET series_id = excluded.series_id")
    }

    /// The spans of raw samples the sender thinned, as its gaps.
    private static func saveGaps(_ c: RemoteCursor, _ db: any StoreStatements, now: Int64) throws {
        for gap in c.thinned {
            try db.execute("""
                INSERT INTO raw_gaps(host, from_t, to_t, reason, recorded) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(host, from_t) DO UPDATE SET to_t = excluded.to_t, reason = excluded.reason, recorded = excluded.recorded
                """, [c.host, gap.from, gap.to, gap.reason, now])
        }
    }
}

extension TwinWriter {
    /// Cuts the head when its samples span a head-window boundary of the data's time. A hub's head is cut
    /// at those boundaries, as a tick loop's is, so its log stays short for readers and its chunks are
    /// windows, however few hosts push.
    public func cutAtHeadWindow() throws {
        if let oldest = head.oldest, floorDiv(latest, policy.headWindow) != floorDiv(oldest, policy.headWindow) { try cut() }
    }

    /// Loads the open versions, for a writer that applies remote ticks without beginning a run (a hub).
    public func loadOpenVersions() throws {
        try store.database.write { db in try state.load(db, store: store) }
    }

    /// What applying remote ticks did.
    public struct RemoteResult: Sendable {
        public var samples = 0
        /// Samples not after their series' newest one: already applied (a batch sent again) or late.
        public var rejected = 0
        public var opened = 0
        public var closed = 0
    }

    /// Applies ticks received from another store, oldest first: their samples through the bulk path (one
    /// log record), then their state changes and the sender's advanced `cursor` in one transaction.
    /// Applying the same ticks again changes nothing: samples not after their series' newest are refused,
    /// an open that is already open and a close of what is not open are skipped. A crash between the two
    /// steps leaves the samples stored and the cursor behind, so the sender sends the ticks again.
    @discardableResult
    public func applyRemote(_ ticks: [RemoteTick], cursor: RemoteCursor) throws -> RemoteResult {
        try applyRemote([(ticks, cursor)])
    }

    /// Applies the ticks of several senders' batches that arrived together (a hub's group commit): all their
    /// samples in one log record, all their state changes and cursors in one transaction, in order.
    @discardableResult
    public func applyRemote(_ parts: [(ticks: [RemoteTick], cursor: RemoteCursor)]) throws -> RemoteResult {
        var result = RemoteResult()
        var samples: [(Int64, Int64, Double)] = []
        samples.reserveCapacity(parts.reduce(0) { $0 + $1.ticks.reduce(0) { $0 + $1.ids.count } })
        // In arrival order, which is time order per series as the bulk path needs: a group's parts of one
        // host are consecutive ranges of its ticks, oldest first, and other hosts' series are their own.
        for part in parts { for t in part.ticks { for (id, v) in zip(t.ids, t.values) { samples.append((id, t.time, v)) } } }
        let batch = try append(batch: samples)
        result.samples = batch.accepted
        result.rejected = batch.rejected
        try cutAtHeadWindow()

        let cipher = store.cipher
        // The open versions as this batch leaves them: the hub's (all hosts') state, with this batch's
        // changes on top. State itself changes only after the commit, in place: copying it per batch (for
        // a rollback) cost time in proportion to every host's open versions.
        var overlay: [EntityKind: [String: StateTracker.Open?]] = [:]
        func open(_ kind: EntityKind, _ key: String) -> StateTracker.Open? {
            if let o = overlay[kind]?[key] { return o }
            return state.tracker.current[kind]?[key]
        }
        var written: [(delta: StateTracker.Delta, opened: [Int64], t: Int64)] = []
        try writeTransaction { db in
            for part in parts {
                for t in part.ticks {
                    var delta = StateTracker.Delta()
                    for c in t.closed {
                        guard let o = open(c.kind, c.key), o.validFrom < t.time else { continue }
                        delta.close.append((c.kind, c.key, o.rowID, o.validFrom))
                    }
                    for e in t.opened {
                        if let o = open(e.kind, e.key) {
                            if o.validFrom >= t.time { continue } // applied before
                            if !delta.close.contains(where: { $0.kind == e.kind && $0.key == e.key }) {
                                delta.close.append((e.kind, e.key, o.rowID, o.validFrom))
                            }
                        }
                        delta.open.append(e)
                    }
                    guard !delta.isEmpty else { continue }
                    let opened = try state.write(db, delta, health: [], at: t.time, cipher: cipher)
                    for c in delta.close { overlay[c.kind, default: [:]][c.key] = .some(nil) }
                    for (e, id) in zip(delta.open, opened) {
                        overlay[e.kind, default: [:]][e.key] = StateTracker.Open(attributes: e.attributes, rowID: id, validFrom: t.time)
                    }
                    written.append((delta, opened, t.time))
                    result.opened += delta.open.count
                    result.closed += delta.close.count
                }
            }
            try TwinStore.save(parts.map(\.cursor), db, now: TwinTime.nowMillis())
        }
        for w in written { state.applied(w.delta, opened: w.opened, health: [], at: w.t) }
        if result.closed > 0, let t = written.last?.t { requestPacking(at: t) }
        return result
    }
}
