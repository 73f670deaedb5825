import TwinCore

/// The writer's part for state: the open versions (through ``StateTracker``), the versions and health
/// lines a tick writes, and the run's events.
struct StateWriter {
    private(set) var tracker = StateTracker()
    private var lastHealth: [String: CollectorHealth] = [:]

    /// Loads the open versions of `store` (at the start of a run).
    mutating func load(_ db: any StoreStatements, store: TwinStore) throws {
        var current: [EntityKind: [String: StateTracker.Open]] = [:]
        try Self.addOpen(db.rows("SELECT id, kind, key, valid_from, attributes FROM versions WHERE valid_to IS NULL"), store, to: &current)
        tracker = StateTracker(current: current)
    }

    /// Adds open `versions` rows (`id, kind, key, valid_from, attributes`) to `current`, opened with the
    /// store's keys; rows of a kind this version does not know are left out.
    private static func addOpen(_ rows: [SQLRow], _ store: TwinStore, to current: inout [EntityKind: [String: StateTracker.Open]]) throws {
        for row in rows {
            guard let kind = EntityKind(rawValue: try row.text(1)) else { continue }
            let id = try row.integer(0)
            let attrs = try store.attributes(kind, row[4], where: "versions row \(id)")
            current[kind, default: [:]][store.key(kind, try row.text(2))] = .init(attributes: attrs, rowID: id, validFrom: try row.integer(3))
        }
    }

    /// Replaces the open versions whose keys start with `keyPrefix` (one host's, at a hub) by those stored.
    mutating func reload(_ db: any StoreStatements, store: TwinStore, keyPrefix: String) throws {
        var current = tracker.current
        for kind in current.keys { current[kind] = current[kind]!.filter { !$0.key.hasPrefix(keyPrefix) } }
        try Self.addOpen(db.rows("SELECT id, kind, key, valid_from, attributes FROM versions WHERE valid_to IS NULL AND substr(key, 1, CAST(? AS INTEGER)) = ?",
                                 [keyPrefix.unicodeScalars.count, keyPrefix]), store, to: &current)
        tracker = StateTracker(current: current)
    }

    /// The health lines that differ from the last ones written.
    func changedHealth(_ health: [CollectorHealth]) -> [CollectorHealth] {
        health.filter { lastHealth[$0.collector]?.status != $0.status || lastHealth[$0.collector]?.message != $0.message }
    }

    /// Writes a tick's version changes and health lines at `t` inside the caller's transaction; returns
    /// the row ids of the opened versions, in `delta.open` order.
    func write(_ db: any StoreStatements, _ delta: StateTracker.Delta, health: [CollectorHealth], at t: Int64, cipher: (any AttributeCipher)?) throws -> [Int64] {
        var opened: [Int64] = []
        if db.dialect == .postgres && delta.close.count + delta.open.count > 2 {
            opened = try Self.writeInBatches(db, delta, at: t, cipher: cipher)
        } else {
            opened = try Self.writeOneByOne(db, delta, at: t, cipher: cipher)
        }
        for h in health {
            try db.execute("""
                INSERT INTO health(collector, status, message, duration_us, t) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(collector) DO UPDATE SET status = excluded.status, message = excluded.message, duration_us = excluded.duration_us, t = excluded.t
                """, [h.collector, h.status.rawValue, h.message, h.durationMicros, t])
        }
        return opened
    }

    /// A statement per version: SQLite's are calls into this process, cached.
    private static func writeOneByOne(_ db: any StoreStatements, _ delta: StateTracker.Delta, at t: Int64, cipher: (any AttributeCipher)?) throws -> [Int64] {
        var opened: [Int64] = []
        for c in delta.close {
            try db.execute("UPDATE versions SET valid_to = ?, span = ? WHERE id = ?", [t, SpanClass.of(t - c.validFrom), c.rowID])
        }
        for e in delta.open {
            let (key, attrs) = sealed(e, cipher)
            opened.append(try db.insert("INSERT INTO versions(kind, key, valid_from, attributes) VALUES (?, ?, ?, ?)",
                                        [e.kind.rawValue, key, t, try AttributeJSON.encode(attrs, for: db.dialect)]))
        }
        return opened
    }

    /// PostgreSQL: the closes in one `UPDATE ... FROM (VALUES ...)`, the opens' ids reserved in one statement
    /// and their rows inserted in one: three round trips however many versions change.
    private static func writeInBatches(_ db: any StoreStatements, _ delta: StateTracker.Delta, at t: Int64, cipher: (any AttributeCipher)?) throws -> [Int64] {
        let per = maxStatementParameters / 2
        for start in stride(from: 0, to: delta.close.count, by: per) {
            let part = delta.close[start..<min(start + per, delta.close.count)]
            let tuples = ["(?::bigint, ?::bigint)"] + Array(repeating: "(?, ?)", count: part.count - 1)
            try db.execute("UPDATE versions AS v SET valid_to = ?, span = x.span FROM (VALUES \(tuples.joined(separator: ", "))) AS x(id, span) WHERE v.id = x.id",
                           [t as any SQLValueConvertible] + part.flatMap { [$0.rowID, SpanClass.of(t - $0.validFrom)] as [any SQLValueConvertible] })
        }
        let ids = try db.reserveIDs("versions", delta.open.count)
        let rows: [[SQLValue]] = try zip(delta.open, ids).map { e, id in
            let (key, attrs) = sealed(e, cipher)
            return [.integer(id), .text(e.kind.rawValue), .text(key), .integer(t), try AttributeJSON.encode(attrs, for: .postgres)]
        }
        try db.insertRows("versions", ["id", "kind", "key", "valid_from", "attributes"], rows)
        return ids
    }

    /// An entity's key and attributes as stored: sealed where the cipher's policy says.
    private static func sealed(_ e: Entity, _ cipher: (any AttributeCipher)?) -> (String, [String: AttributeValue]) {
        cipher.map { ($0.seal(e.kind, key: e.key), $0.seal(e.kind, e.attributes)) } ?? (e.key, e.attributes)
    }

    /// Takes a written tick into the in-memory state.
    mutating func applied(_ delta: StateTracker.Delta, opened: [Int64], health: [CollectorHealth], at t: Int64) {
        for h in health { lastHealth[h.collector] = h }
        tracker.apply(delta, opened: opened, at: t)
    }

    static func insertEvent(_ db: any StoreStatements, _ e: TwinEvent) throws {
        let detail: String? = e.changes.isEmpty ? e.message : try AttributeJSON.encodeChanges(e.changes)
        try db.execute("INSERT INTO events(t, type, kind, key, detail) VALUES (?, ?, ?, ?, ?)", [e.time, e.type.rawValue, e.kind?.rawValue, e.key, detail])
    }
}
