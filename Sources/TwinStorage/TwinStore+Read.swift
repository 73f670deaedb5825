import Foundation
import GRDB
import TwinCore

/// A stored series: its id in the index, key and type.
public struct SeriesInfo: Sendable, Hashable {
    public var id: Int64
    public var key: SeriesKey
    public var type: MetricType
}

/// The entities that differ between two times.
public struct StateDiff: Sendable {
    public struct Changed: Sendable {
        public var kind: EntityKind
        public var key: String
        public var changes: [TwinEvent.Change]
        public init(kind: EntityKind, key: String, changes: [TwinEvent.Change]) { (self.kind, self.key, self.changes) = (kind, key, changes) }
    }
    public var from: Int64
    public var to: Int64
    public var appeared: [EntityVersion] = []
    public var changed: [Changed] = []
    public var disappeared: [EntityVersion] = []
}

/// The JSON form of a ``StateDiff`` (CLI `diff --json`, `/api/v1/twin/diff`): the lists, optionally at
/// most `limitPerKind` entries of each kind in each, and how many there are of each kind.
public struct StateDiffJSON: Encodable {
    public struct Changed: Encodable { public var kind: EntityKind; var key: String; var changes: [TwinEvent.Change] }
    /// How many entities of one kind appeared, changed and disappeared (whether listed or not).
    public struct Counts: Encodable { var appeared = 0, changed = 0, disappeared = 0 }
    public var from: String
    public var to: String
    public var appeared: [EntityVersion]
    public var changed: [Changed]
    public var disappeared: [EntityVersion]
    public var counts: [String: Counts] = [:]
    /// Whether `limitPerKind` left entries out.
    public var truncated = false

    public init(_ d: StateDiff, limitPerKind limit: Int = .max) {
        from = TwinTime.rfc3339(d.from)
        to = TwinTime.rfc3339(d.to)
        var counts: [String: Counts] = [:]
        func first<T>(_ list: [T], kind: (T) -> EntityKind, _ count: WritableKeyPath<Counts, Int>) -> [T] {
            list.filter { e in
                let n = counts[kind(e).rawValue, default: Counts()][keyPath: count] + 1
                counts[kind(e).rawValue, default: Counts()][keyPath: count] = n
                return n <= limit
            }
        }
        appeared = first(d.appeared, kind: \.kind, \.appeared)
        changed = first(d.changed, kind: \.kind, \.changed).map { Changed(kind: $0.kind, key: $0.key, changes: $0.changes) }
        disappeared = first(d.disappeared, kind: \.kind, \.disappeared)
        self.counts = counts
        truncated = appeared.count + changed.count + disappeared.count < d.appeared.count + d.changed.count + d.disappeared.count
    }
}

/// One run of `hosttwin run` as recorded in the store.
public struct RunInfo: Sendable {
    public var id: Int64
    public var started: Int64
    /// The run's last tick as of its last seal or stop (``TwinStore/lastTick()`` is the store's latest).
    public var lastTick: Int64?
    public var stopped: Int64?
    public var interval: Int64
}

extension TwinStore {
    // MARK: Series and samples

    /// Every stored series, optionally only those whose metric name matches `regex` (anchored, like PromQL).
    public func series(matching regex: String? = nil) throws -> [SeriesInfo] {
        let re: LinearRegex?
        if let regex {
            do { re = try LinearRegex(regex) } catch {
                throw TwinError.badInput("invalid regular expression '\(regex)': \(error)")
            }
        } else { re = nil }
        return try seriesCatalog().filter { s in re?.wholeMatch(s.key.metric) ?? true }.sorted { ($0.key.metric, $0.key.labels.text) < ($1.key.metric, $1.key.labels.text) }
    }

    /// The `# HELP` texts recorded with imported samples, by metric name.
    public func metricHelp() throws -> [String: String] {
        try database.read { db in
            var out: [String: String] = [:]
            for row in try db.rows("SELECT name, help FROM metric_help") { out[try row.text(0)] = try row.text(1) }
            return out
        }
    }

    /// Every stored series in id order. Kept in memory: each call reads only the series added since the
    /// previous one, so a long-lived reader (the server) pays for the index once. Series of one label set
    /// share its decoded labels (a process's five series), and series of one metric its name: a busy host
    /// adds per-process series by the thousand, and the catalog is never shortened.
    public func seriesCatalog() throws -> [SeriesInfo] {
        let known = catalog.withLock { $0 }
        let maxID = known.last?.id ?? 0
        let added = try database.read { db in
            var labels: [Int64: Labels] = [:]
            var names = metricNames.withLock { $0 }
            let added = try db.rows("""
                SELECT s.id, m.name, s.labels_id, l.labels, m.type FROM series s JOIN metrics m ON m.id = s.metric_id JOIN label_sets l ON l.id = s.labels_id
                WHERE s.id > ? ORDER BY s.id
                """, [maxID]).map { row in
                let labelsID = try row.integer(2), name = try row.text(1)
                let set = try labels[labelsID] ?? TwinWriter.decodeLabels(try row.text(3))
                labels[labelsID] = set
                if names[name] == nil { names[name] = name }
                return SeriesInfo(id: try row.integer(0), key: SeriesKey(names[name]!, set), type: MetricType(rawValue: try row.text(4)) ?? .untyped)
            }
            metricNames.withLock { $0 = names }
            return added
        }
        if added.isEmpty { return known }
        return catalog.withLock { c in
            if (c.last?.id ?? 0) == maxID { c += added }
            return c
        }
    }

    /// The latest value at or before `at` of every series (of `metrics`, when given) seen in
    /// `[at - lookback, at]`, with its time, and the value before it (for rates).
    public func latestValues(at: Int64, lookback: Int64 = 5 * 60_000, metrics: Set<String>? = nil) throws -> (series: [Int64: SeriesInfo], latest: [Int64: (Int64, Double)], previous: [Int64: (Int64, Double)]) {
        let all = try series().filter { metrics?.contains($0.key.metric) ?? true }
        let byID = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
        let data = try samples(ids: all.map(\.id), from: at - lookback, to: at)
        var latest: [Int64: (Int64, Double)] = [:]
        var previous: [Int64: (Int64, Double)] = [:]
        for (id, list) in data where !list.isEmpty {
            latest[id] = list[list.count - 1]
            if list.count >= 2 { previous[id] = list[list.count - 2] }
        }
        return (byID, latest, previous)
    }

    // MARK: State

    /// Every entity version valid at `at` (`valid_from <= at < valid_to`), optionally of some kinds only,
    /// ordered by kind and key.
    public func state(at: Int64, kinds: [EntityKind]? = nil) throws -> [EntityVersion] {
        try database.read { db in try self.state(db, at: at, kinds: kinds) }
    }

    /// Versions valid at `at`: the open ones (`valid_to IS NULL`, the current entities) and, per
    /// lifetime class c, the closed versions that started within 2^c s before `at` and ended after it
    /// (index `versions_by_span`, and the blocks of packed versions of that class), so the versions read
    /// stay close to the versions returned whatever `at` is.
    func state(_ db: any StoreStatements, at: Int64, kinds: [EntityKind]?) throws -> [EntityVersion] {
        let wanted = kinds.map { Set($0.map(\.rawValue)) }
        let columns = "SELECT \(Self.versionColumns) FROM versions"
        var rows = try db.rows("\(columns) \(Self.indexedBy("versions_by_end", db)) WHERE valid_to IS NULL AND valid_from <= ?", [at])
        var packed: [EntityVersion] = []
        let ends = try db.rows("""
            SELECT (SELECT max(valid_to) FROM versions), (SELECT max(max_to) FROM version_blocks), (SELECT max(span) FROM versions), (SELECT max(span) FROM version_blocks)
            """).first
        let newest = [ends?[0].int64, ends?[1].int64].compactMap { $0 }.max() ?? at
        if at < newest {
            // Every class in one statement for rows and one for blocks (each statement is a round trip to
            // PostgreSQL), each branch on its own index range.
            let classes = 0...Int(max(ends?[2].int64 ?? 0, ends?[3].int64 ?? 0, 0))
            let earliest = classes.map { c in at > Int64.min + SpanClass.window(c) ? at - SpanClass.window(c) : Int64.min }
            let closed = "\(columns) \(Self.indexedBy("versions_by_span", db)) WHERE span = ? AND valid_from >= ? AND valid_from <= ? AND valid_to > ?"
            rows += try db.rows(classes.map { _ in closed }.joined(separator: " UNION ALL "),
                                classes.flatMap { [$0, earliest[$0], at, at] as [any SQLValueConvertible] })
            packed = try packedAlive(db, classes: classes, earliest: earliest, at: at, kinds: kinds.map(Set.init))
        }
        var out = try versions(rows, kinds: wanted)
        out += packed.lazy.map(opened)
        out.sort { $0.kind != $1.kind ? $0.kind < $1.kind : $0.key < $1.key }
        return out
    }

    /// The columns ``versions(_:kinds:)`` reads, in its order.
    static let versionColumns = "id, kind, key, valid_from, valid_to, attributes"

    /// SQLite's `INDEXED BY index` (the planner's choice is poor for these reads); nothing in PostgreSQL.
    static func indexedBy(_ index: String, _ db: any StoreStatements) -> String {
        db.dialect == .sqlite ? "INDEXED BY " + index : ""
    }

    /// Entity versions from `versions` rows (``versionColumns``), of `kinds` when given, with only the
    /// attributes named in `names` when given.
    func versions(_ rows: [SQLRow], kinds: Set<String>?, attributes names: Set<String>? = nil) throws -> [EntityVersion] {
        var out: [EntityVersion] = []
        out.reserveCapacity(rows.count)
        for row in rows {
            let kindText = try row.text(1)
            guard kinds?.contains(kindText) ?? true, let kind = EntityKind(rawValue: kindText) else { continue }
            let id = try row.integer(0)
            out.append(EntityVersion(kind: kind, key: key(kind, try row.text(2)), attributes: Self.only(names, of: try attributes(kind, row[5], where: "versions row \(id)")),
                                     validFrom: try row.integer(3), validTo: row[4].int64))
        }
        return out
    }

    /// `AND kind IN (…)` and its arguments for `kinds` (nothing when nil): rows of other kinds are not read.
    static func kindFilter(_ kinds: [EntityKind]?) -> (sql: String, arguments: [any SQLValueConvertible]) {
        guard let kinds, !kinds.isEmpty else { return ("", []) }
        return (" AND kind IN (" + kinds.map { _ in "?" }.joined(separator: ", ") + ")", kinds.map(\.rawValue))
    }

    /// The attribute names of the newest `sample` versions of `kind` (a stable column set for SQL views,
    /// also when nothing of the kind exists at the time asked about).
    public func attributeNames(kind: EntityKind, sample: Int = 20) throws -> Set<String> {
        try database.read { db in
            var names = Set<String>()
            // The kind's current versions, else its newest ones.
            var rows = try db.rows("SELECT id, attributes FROM versions \(Self.indexedBy("versions_by_end", db)) WHERE valid_to IS NULL AND kind = ? LIMIT ?",
                                   [kind.rawValue, sample])
            if rows.isEmpty {
                rows = try db.rows("SELECT id, attributes FROM versions WHERE kind = ? ORDER BY id DESC LIMIT ?", [kind.rawValue, sample])
            }
            if rows.isEmpty, let newest = try db.value("SELECT max(max_to) FROM version_blocks")?.int64 {
                for v in try packedEnding(db, from: newest - StoragePolicy.day, to: newest, kinds: [kind]) { names.formUnion(v.attributes.keys) }
            }
            for row in rows {
                let id = try row.integer(0)
                names.formUnion(try AttributeJSON.decode(row[1], db.dialect, where: "versions row \(id)").keys)
            }
            return names
        }
    }

    /// What appeared, changed (attribute by attribute) and disappeared between two times.
    public func diff(from: Int64, to: Int64, kinds: [EntityKind]? = nil) throws -> StateDiff {
        try database.read { db in
            let a = try self.state(db, at: from, kinds: kinds)
            let b = try self.state(db, at: to, kinds: kinds)
            struct K: Hashable { var kind: EntityKind; var key: String }
            let before = Dictionary(a.map { (K(kind: $0.kind, key: $0.key), $0) }, uniquingKeysWith: { x, _ in x })
            let after = Dictionary(b.map { (K(kind: $0.kind, key: $0.key), $0) }, uniquingKeysWith: { x, _ in x })
            var d = StateDiff(from: from, to: to)
            for v in b {
                if let old = before[K(kind: v.kind, key: v.key)] {
                    if old.attributes != v.attributes {
                        d.changed.append(.init(kind: v.kind, key: v.key, changes: TwinEvent.changes(from: old.attributes, to: v.attributes)))
                    }
                } else { d.appeared.append(v) }
            }
            d.disappeared = a.filter { after[K(kind: $0.kind, key: $0.key)] == nil }
            return d
        }
    }

    /// Events in `[from, to]`, oldest first, at most `limit`: entity events (appeared, changed with the
    /// attribute changes, disappeared) derived from the versions that start or end in the range, and the
    /// stored events of runs (started, stopped, gap).
    public func events(from: Int64, to: Int64, limit: Int = 10_000) throws -> [TwinEvent] {
        try database.read { db in
            var out = try db.rows("SELECT t, type, kind, key, detail FROM events WHERE t >= ? AND t <= ? ORDER BY t, id LIMIT ?", [from, to, limit]).map { row in
                let type = TwinEvent.EventType(rawValue: try row.text(1)) ?? .changed
                let detail = row[4].string
                var ev = TwinEvent(time: try row.integer(0), type: type, kind: row[2].string.flatMap(EntityKind.init(rawValue:)), key: row[3].string)
                if type == .changed, let detail, let changes = try? JSONDecoder().decode([TwinEvent.Change].self, from: Data(detail.utf8)) {
                    ev.changes = changes
                } else if type == .alert, let detail, let a = AlertRecord.decode(detail) {
                    ev.message = a.summary
                } else { ev.message = detail }
                return ev
            }
            out += try self.entityEvents(db, from: from, to: to)
            out.sort { ($0.time, $0.kind?.rawValue ?? "", $0.key ?? "") < ($1.time, $1.kind?.rawValue ?? "", $1.key ?? "") }
            return Array(out.prefix(limit))
        }
    }

    /// The versions that started in `[from, to]` (of `kinds`, when given), oldest first: entity
    /// appearances and changes with their attributes (only those named in `attributes`, when given: a
    /// reader that needs a few of a process's attributes does not hold every command line and environment
    /// of a busy window).
    public func versionsStarting(from: Int64, to: Int64, kinds: [EntityKind]? = nil, attributes: Set<String>? = nil) throws -> [EntityVersion] {
        try database.read { db in try self.versionsStarting(db, from: from, to: to, kinds: kinds, attributes: attributes) }
    }

    /// Starts in the range: open versions, then each lifetime class (index versions_by_span), then blocks.
    func versionsStarting(_ db: any StoreStatements, from: Int64, to: Int64, kinds: [EntityKind]?, attributes: Set<String>? = nil) throws -> [EntityVersion] {
        let columns = "SELECT \(Self.versionColumns) FROM versions"
        let kind = Self.kindFilter(kinds)
        var rows = try db.rows("\(columns) WHERE span IS NULL AND valid_from >= ? AND valid_from <= ?\(kind.sql)", [from, to] + kind.arguments)
        if let classes = try db.value("SELECT max(span) FROM versions")?.int64 {
            let range = 0...max(classes, 0)
            rows += try db.rows(range.map { _ in "\(columns) WHERE span = ? AND valid_from >= ? AND valid_from <= ?\(kind.sql)" }.joined(separator: " UNION ALL "),
                                range.flatMap { ([$0, from, to] as [any SQLValueConvertible]) + kind.arguments })
        }
        var out = try versions(rows, kinds: kinds.map { Set($0.map(\.rawValue)) }, attributes: attributes)
        out += try packedStarting(db, from: from, to: to, kinds: kinds.map(Set.init), attributes: attributes)
        out.sort { $0.validFrom < $1.validFrom }
        return out
    }

    /// The versions that ended in `[from, to]` (of `kinds`, when given), by end: entity disappearances and
    /// the old sides of changes (with only `attributes`, when given).
    public func versionsEnding(from: Int64, to: Int64, kinds: [EntityKind]? = nil, attributes: Set<String>? = nil) throws -> [EntityVersion] {
        try database.read { db in try self.versionsEnding(db, from: from, to: to, kinds: kinds, attributes: attributes).sorted { $0.validTo! < $1.validTo! } }
    }

    /// Ends in the range: rows, then blocks.
    func versionsEnding(_ db: any StoreStatements, from: Int64, to: Int64, kinds: [EntityKind]? = nil, attributes: Set<String>? = nil) throws -> [EntityVersion] {
        let kind = Self.kindFilter(kinds)
        let rows = try db.rows("SELECT \(Self.versionColumns) FROM versions WHERE valid_to >= ? AND valid_to <= ?\(kind.sql)", [from, to] + kind.arguments)
        return try versions(rows, kinds: kinds.map { Set($0.map(\.rawValue)) }, attributes: attributes)
            + packedEnding(db, from: from, to: to, kinds: kinds.map(Set.init), attributes: attributes)
    }

    /// A version starting at T whose entity had a version ending at T is a change; otherwise the start
    /// is an appearance and the end a disappearance.
    func entityEvents(_ db: any StoreStatements, from: Int64, to: Int64) throws -> [TwinEvent] {
        struct K: Hashable { var kind: EntityKind; var key: String; var t: Int64 }
        let starts = try versionsStarting(db, from: from, to: to, kinds: nil)
        let ends = try versionsEnding(db, from: from, to: to)
        var endAt: [K: EntityVersion] = [:]
        for e in ends { endAt[K(kind: e.kind, key: e.key, t: e.validTo!)] = e }
        var startAt = Set<K>()
        var out: [TwinEvent] = []
        for s in starts {
            let k = K(kind: s.kind, key: s.key, t: s.validFrom)
            startAt.insert(k)
            if let e = endAt[k] {
                out.append(TwinEvent(time: k.t, type: .changed, kind: k.kind, key: k.key, changes: TwinEvent.changes(from: e.attributes, to: s.attributes)))
            } else {
                out.append(TwinEvent(time: k.t, type: .appeared, kind: k.kind, key: k.key))
            }
        }
        for e in ends {
            let k = K(kind: e.kind, key: e.key, t: e.validTo!)
            guard !startAt.contains(k) else { continue }
            out.append(TwinEvent(time: k.t, type: .disappeared, kind: k.kind, key: k.key))
        }
        return out
    }

    // MARK: Runs and health

    /// Every run, oldest first.
    public func runs() throws -> [RunInfo] {
        try database.read { db in
            try db.rows("SELECT id, started, last_tick, stopped, interval_ms FROM runs ORDER BY id").map {
                RunInfo(id: try $0.integer(0), started: try $0.integer(1), lastTick: $0[2].int64, stopped: $0[3].int64, interval: try $0.integer(4))
            }
        }
    }

    /// The latest tick stored, if any: the newest sample in the log, or the last tick recorded by a seal or stop.
    public func lastTick() throws -> Int64? {
        let (sealed, log) = try withLog(ids: [], from: .min, to: .max) { db in try Self.lastSealedTick(db) }
        return [sealed, log.newest].compactMap { $0 }.max()
    }

    /// `runs.last_tick`, written when head windows are sealed and at stops.
    static func lastSealedTick(_ db: any StoreStatements) throws -> Int64? {
        try db.value("SELECT max(last_tick) FROM runs")?.int64
    }

    /// The latest health line of each collector (as of its last change).
    public func health() throws -> [CollectorHealth] {
        try database.read { db in
            try db.rows("SELECT collector, status, message, duration_us FROM health ORDER BY collector").map {
                CollectorHealth(collector: try $0.text(0), status: CollectorHealth.Status(rawValue: try $0.text(1)) ?? .error,
                                message: $0[2].string, durationMicros: $0[3].int64 ?? 0)
            }
        }
    }

    /// Counts for a quick look at the store: series, chunks, sealed samples and their bytes, rollup
    /// blocks, samples in the log, versions, events.
    public func counts() throws -> [String: Int64] {
        let out = try database.read { db in
            let row = try db.rows("""
                SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM chunks), (SELECT coalesce(sum(count), 0) FROM chunks),
                    (SELECT coalesce(sum(length(data)), 0) FROM chunks), (SELECT count(*) FROM rollups), (SELECT coalesce(sum(length(data)), 0) FROM rollups),
                    (SELECT count(*) FROM versions) + (SELECT coalesce(sum(count), 0) FROM version_blocks), (SELECT count(*) FROM version_blocks),
                    (SELECT count(*) FROM events)
                """).first
            let names = ["series", "chunks", "chunk_samples", "chunk_bytes", "rollup_blocks", "rollup_bytes", "versions", "version_blocks", "events"]
            return Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, row?[$0].int64 ?? 0) })
        }
        // The log as of a moment after: a seal in between may count a head window in both (a quick look).
        let (_, log) = try withLog(ids: [], from: .min, to: .max) { _ in () }
        var all = out
        all["log_samples"] = Int64(log.samples)
        all["log_segments"] = Int64(log.segments)
        all["log_bytes"] = Int64(log.bytes)
        return all
    }
}

extension TwinStore {
    /// Bytes of `twin.db` by table and index (SQLite's dbstat: whole pages, so row and page overhead
    /// count), plus `free` for pages on the freelist. Nil when this SQLite lacks dbstat.
    public func spaceByTable() throws -> [String: Int64]? {
        guard database.dialect == .sqlite else { return nil }
        return try pool.read { db in
            guard let rows = try? Row.fetchAll(db, sql: "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name") else { return nil }
            var out: [String: Int64] = [:]
            for r in rows { out[r["name"]] = r["bytes"] }
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            out["free"] = (try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0) * pageSize
            return out
        }
    }

    /// The time of the oldest 1-minute rollup point (the tier that stands in for raw samples older than
    /// the oldest), nil when there is none.
    public func oldestRollupTime() throws -> Int64? {
        try database.read { db in try db.value("SELECT min(min_t) FROM rollups WHERE tier = 1")?.int64 }
    }

    /// The oldest and newest stored sample times (chunks and log).
    public func sampleTimeRange() throws -> (Int64, Int64)? {
        let (sealed, log) = try withLog(ids: [], from: .min, to: .max) { db -> (Int64?, Int64?) in
            // Both ends from indexes: chunks(min_t) and chunks(max_t).
            let ends = try db.rows("SELECT (SELECT min(min_t) FROM chunks), (SELECT max(max_t) FROM chunks)").first
            return (ends?[0].int64, ends?[1].int64)
        }
        guard let a = [sealed.0, log.oldest].compactMap({ $0 }).min(), let b = [sealed.1, log.newest].compactMap({ $0 }).max() else { return nil }
        return (a, b)
    }
}
