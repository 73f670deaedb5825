import Foundation
import GRDB

/// The embedded store's SQLite schema, applied by named migrations (see docs/format/store.md).
enum Schema {
    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE series(
                    id INTEGER PRIMARY KEY,
                    metric TEXT NOT NULL,
                    labels TEXT NOT NULL,
                    type TEXT NOT NULL DEFAULT 'gauge',
                    UNIQUE(metric, labels));
                CREATE TABLE chunks(
                    series_id INTEGER NOT NULL,
                    min_t INTEGER NOT NULL,
                    max_t INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY(series_id, min_t)) WITHOUT ROWID;
                CREATE TABLE head_log(t INTEGER PRIMARY KEY, data BLOB NOT NULL);
                CREATE TABLE versions(
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    key TEXT NOT NULL,
                    valid_from INTEGER NOT NULL,
                    valid_to INTEGER,
                    attributes TEXT NOT NULL);
                CREATE INDEX versions_by_end ON versions(valid_to, kind);
                CREATE INDEX versions_by_start ON versions(kind, valid_from);
                CREATE INDEX versions_by_key ON versions(kind, key, valid_from);
                CREATE TABLE events(
                    id INTEGER PRIMARY KEY,
                    t INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    kind TEXT,
                    key TEXT,
                    detail TEXT);
                CREATE INDEX events_by_time ON events(t);
                CREATE TABLE runs(
                    id INTEGER PRIMARY KEY,
                    started INTEGER NOT NULL,
                    last_tick INTEGER,
                    stopped INTEGER,
                    interval_ms INTEGER NOT NULL);
                CREATE TABLE health(
                    collector TEXT PRIMARY KEY,
                    status TEXT NOT NULL,
                    message TEXT,
                    duration_us INTEGER NOT NULL,
                    t INTEGER NOT NULL);
                """)
        }
        // v2: the head log leaves SQLite for DIR/wal/ segment files; chunks carry a level and the
        // checksummed codec of docs/format/chunks.md; rollup tiers. v1 chunks and head-log rows are
        // re-encoded as level-0 chunks, which the next compaction merges into hours.
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE chunks_v2(
                    id INTEGER PRIMARY KEY,
                    series_id INTEGER NOT NULL,
                    level INTEGER NOT NULL,
                    min_t INTEGER NOT NULL,
                    max_t INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    data BLOB NOT NULL);
                CREATE TABLE rollups(
                    id INTEGER PRIMARY KEY,
                    series_id INTEGER NOT NULL,
                    tier INTEGER NOT NULL,
                    start INTEGER NOT NULL,
                    min_t INTEGER NOT NULL,
                    max_t INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    UNIQUE(series_id, tier, start));
                """)
            let insert = try db.makeStatement(sql: "INSERT INTO chunks_v2(series_id, level, min_t, max_t, count, data) VALUES (?, 0, ?, ?, ?, ?)")
            let old = try Row.fetchCursor(db, sql: "SELECT series_id, min_t, count, data FROM chunks")
            while let row = try old.next() {
                var samples: [(Int64, Double)] = []
                do { try XORChunkDecoder.decode([UInt8](row["data"] as Data), count: row["count"], into: &samples) } catch {
                    continue // unreadable v1 chunk: `hosttwin check` on the v1 store would have named it
                }
                try insert.execute(arguments: [row["series_id"], samples[0].0, samples[samples.count - 1].0, samples.count, Data(try ChunkCodec.encode(samples))])
            }
            var head: [Int64: [(Int64, Double)]] = [:]
            let log = try Row.fetchCursor(db, sql: "SELECT t, data FROM head_log ORDER BY t")
            while let row = try log.next() {
                let t: Int64 = row["t"]
                let bytes = [UInt8](row["data"] as Data)
                guard bytes.count >= 4 else { continue }
                let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
                guard bytes.count == 4 + n * 12 else { continue }
                for i in 0..<n {
                    var id: Int64 = 0, bits: UInt64 = 0
                    for k in 0..<4 { id |= Int64(bytes[4 + i * 4 + k]) << Int64(8 * k) }
                    for k in 0..<8 { bits |= UInt64(bytes[4 + n * 4 + i * 8 + k]) << UInt64(8 * k) }
                    head[id, default: []].append((t, Double(bitPattern: bits)))
                }
            }
            for (id, samples) in head {
                try insert.execute(arguments: [id, samples[0].0, samples[samples.count - 1].0, samples.count, Data(try ChunkCodec.encode(samples))])
            }
            try db.execute(sql: """
                UPDATE runs SET last_tick = max(coalesce(last_tick, 0), (SELECT max(t) FROM head_log))
                    WHERE id = (SELECT max(id) FROM runs) AND EXISTS (SELECT 1 FROM head_log);
                DROP TABLE chunks;
                DROP TABLE head_log;
                ALTER TABLE chunks_v2 RENAME TO chunks;
                CREATE INDEX chunks_by_series ON chunks(series_id, max_t);
                CREATE INDEX chunks_level0 ON chunks(min_t) WHERE level = 0;
                DROP INDEX versions_by_key;
                CREATE TABLE series_v2(
                    id INTEGER PRIMARY KEY,
                    hash INTEGER NOT NULL,
                    metric TEXT NOT NULL,
                    labels TEXT NOT NULL,
                    type TEXT NOT NULL DEFAULT 'gauge');
                """)
            // Series are found by a 64-bit hash of their key instead of a unique index on the key text,
            // which stored every key twice.
            let copy = try db.makeStatement(sql: "INSERT INTO series_v2(id, hash, metric, labels, type) VALUES (?, ?, ?, ?, ?)")
            for row in try Row.fetchAll(db, sql: "SELECT id, metric, labels, type FROM series") {
                try copy.execute(arguments: [row["id"], SeriesHash.of(metric: row["metric"], labels: row["labels"]), row["metric"], row["labels"], row["type"]])
            }
            try db.execute(sql: """
                DROP TABLE series;
                ALTER TABLE series_v2 RENAME TO series;
                CREATE INDEX series_by_hash ON series(hash);
                """)
        }
        // v3: entity events are derived from versions when read (a version starting where its entity's
        // previous one ended is a change); only run events stay stored.
        m.registerMigration("v3") { db in
            try db.execute(sql: "DELETE FROM events WHERE type IN ('appeared', 'changed', 'disappeared')")
        }
        // v4: closed versions carry their lifetime class (`span`), indexed with their start, so the
        // versions alive at T are found by one short range per class instead of a scan of the history
        // before or after T (docs/ARCHITECTURE.md, "State as of T").
        m.registerMigration("v4") { db in
            try db.execute(sql: "ALTER TABLE versions ADD COLUMN span INTEGER")
            let closed = try Row.fetchAll(db, sql: "SELECT id, valid_from, valid_to FROM versions WHERE valid_to IS NOT NULL")
            let update = try db.makeStatement(sql: "UPDATE versions SET span = ? WHERE id = ?")
            for row in closed {
                let from: Int64 = row["valid_from"], to: Int64 = row["valid_to"]
                try update.execute(arguments: [SpanClass.of(to - from), row["id"] as Int64])
            }
            try db.execute(sql: """
                DROP INDEX versions_by_start;
                CREATE INDEX versions_by_span ON versions(span, valid_from);
                """)
        }
        // v5: chunks by start time, so the oldest raw sample (where queries switch to the 1-minute
        // rollups, and the stored span the dashboard's time slider covers) is an index lookup instead of
        // a scan of every chunk.
        m.registerMigration("v5") { db in
            try db.execute(sql: "CREATE INDEX chunks_by_min_t ON chunks(min_t)")
        }
        // v6: API tokens. Only a hash of each secret is stored; `id` is the public part of the token.
        m.registerMigration("v6") { db in
            try db.execute(sql: """
                CREATE TABLE tokens(
                    id TEXT PRIMARY KEY,
                    role TEXT NOT NULL,
                    host TEXT,
                    name TEXT NOT NULL DEFAULT '',
                    secret_hash BLOB NOT NULL,
                    created INTEGER NOT NULL,
                    expires INTEGER,
                    revoked INTEGER) WITHOUT ROWID
                """)
        }
        // v7: closed versions packed in blocks (VersionCodec), one per lifetime class and seal, so
        // the state history costs bytes per version instead of a row with its JSON and three index entries.
        m.registerMigration("v7") { db in
            try db.execute(sql: """
                CREATE TABLE version_blocks(
                    id INTEGER PRIMARY KEY,
                    span INTEGER NOT NULL,
                    min_from INTEGER NOT NULL,
                    max_from INTEGER NOT NULL,
                    min_to INTEGER NOT NULL,
                    max_to INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    data BLOB NOT NULL);
                CREATE INDEX version_blocks_by_span ON version_blocks(span, max_from);
                CREATE INDEX version_blocks_by_end ON version_blocks(max_to);
                """)
        }
        // v8: positions of the sync protocol: the store's epoch (meta `sync_epoch`) and the sequence
        // numbers of its committed ticks, as runs of ticks on the interval grid (docs/format/sync.md).
        m.registerMigration("v8") { db in
            try db.execute(sql: """
                CREATE TABLE tick_runs(
                    first_seq INTEGER PRIMARY KEY,
                    first_t INTEGER NOT NULL,
                    interval_ms INTEGER NOT NULL,
                    count INTEGER NOT NULL)
                """)
        }
        // v9: a hub's cursors: per sending host, its epoch and last applied tick, when it was last heard
        // from, and its series refs.
        m.registerMigration("v9") { db in
            try db.execute(sql: """
                CREATE TABLE sync_hosts(
                    host TEXT PRIMARY KEY,
                    epoch INTEGER NOT NULL,
                    applied_through INTEGER NOT NULL,
                    updated INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE sync_series(
                    host TEXT NOT NULL,
                    epoch INTEGER NOT NULL,
                    ref INTEGER NOT NULL,
                    series_id INTEGER NOT NULL,
                    PRIMARY KEY(host, epoch, ref)) WITHOUT ROWID;
                """)
        }
        // v10: the time of each host's last applied tick (its lag, for `hosttwin fleet`).
        m.registerMigration("v10") { db in
            try db.execute(sql: "ALTER TABLE sync_hosts ADD COLUMN last_t INTEGER")
        }
        // v11: each host's clock offset, measured at its agent's handshake (hub clock − agent clock).
        m.registerMigration("v11") { db in
            try db.execute(sql: "ALTER TABLE sync_hosts ADD COLUMN clock_offset_ms INTEGER")
        }
        // v12: a hub's outbox — every batch it applied, in applying order, with its origin position, kept
        // until each upstream hub holds it (relay) and for followers (observers) a while longer.
        m.registerMigration("v12") { db in
            try db.execute(sql: """
                CREATE TABLE sync_outbox(
                    id INTEGER PRIMARY KEY,
                    host TEXT NOT NULL,
                    epoch INTEGER NOT NULL,
                    first_seq INTEGER NOT NULL,
                    last_seq INTEGER NOT NULL,
                    standalone INTEGER NOT NULL,
                    applied_at INTEGER NOT NULL,
                    batch BLOB NOT NULL
                );
                CREATE INDEX sync_outbox_host ON sync_outbox(host, id);
                """)
        }
        // v13: spans of time whose raw samples were thinned to the rollups (an agent at its disk cap), of
        // this store's own host ('') or, at a hub, of a pushing host: explicit gaps, never silent ones.
        m.registerMigration("v13") { db in
            try db.execute(sql: """
                CREATE TABLE raw_gaps(
                    host TEXT NOT NULL,
                    from_t INTEGER NOT NULL,
                    to_t INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    recorded INTEGER NOT NULL,
                    PRIMARY KEY(host, from_t)) WITHOUT ROWID;
                """)
        }
        // v14: each host's datacenter (the hub its agent pushes to, or the relay it came through) and the
        // newest tick its agent held at its last handshake (the host's backlog, for `hosttwin fleet`).
        m.registerMigration("v14") { db in
            try db.execute(sql: "ALTER TABLE sync_hosts ADD COLUMN datacenter TEXT; ALTER TABLE sync_hosts ADD COLUMN agent_latest INTEGER")
        }
        // v15: a reader token can be scoped to the hosts of one datacenter.
        m.registerMigration("v15") { db in
            try db.execute(sql: "ALTER TABLE tokens ADD COLUMN datacenter TEXT")
        }
        // v16: a relay token can carry a data policy: what a replica following with it is sent.
        m.registerMigration("v16") { db in
            try db.execute(sql: "ALTER TABLE tokens ADD COLUMN policy TEXT")
        }
        // v17: chunks and rollup blocks are stored per group of 64 series (GroupBlock): one row per group
        // and head window, hour or day holds every member's blob behind a directory, instead of a row
        // (and its index entries) per series. The 1-hour tier's rows span a day (they were 30 days).
        m.registerMigration("v17") { db in
            try GroupMigration.run(db)
        }
        // v18: a series row is two small ids — its metric (name and type, stored once) and its label set
        // (stored once and shared: a process's five series have one) — instead of its metric name, label
        // text, type and hash (about 100 bytes a series with its index, 35 now).
        m.registerMigration("v18") { db in
            try db.execute(sql: """
                ALTER TABLE series RENAME TO series_v2;
                DROP INDEX IF EXISTS series_by_hash;
                CREATE TABLE metrics(
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    UNIQUE(name, type));
                CREATE TABLE label_sets(
                    id INTEGER PRIMARY KEY,
                    hash INTEGER NOT NULL,
                    labels TEXT NOT NULL);
                CREATE TABLE series(
                    id INTEGER PRIMARY KEY,
                    metric_id INTEGER NOT NULL,
                    labels_id INTEGER NOT NULL);
                INSERT INTO metrics(name, type) SELECT DISTINCT metric, type FROM series_v2 ORDER BY metric, type;
                INSERT INTO label_sets(hash, labels) SELECT 0, labels FROM series_v2 GROUP BY labels ORDER BY min(id);
                """)
            let rows = try Row.fetchAll(db, sql: "SELECT id, labels FROM label_sets")
            let update = try db.makeStatement(sql: "UPDATE label_sets SET hash = ? WHERE id = ?")
            for row in rows { try update.execute(arguments: [SeriesHash.of(labels: row["labels"]), row["id"] as Int64]) }
            try db.execute(sql: """
                INSERT INTO series(id, metric_id, labels_id)
                    SELECT s.id, m.id, l.id FROM series_v2 s JOIN metrics m ON m.name = s.metric AND m.type = s.type JOIN label_sets l ON l.labels = s.labels;
                DROP TABLE series_v2;
                CREATE INDEX label_sets_by_hash ON label_sets(hash);
                CREATE UNIQUE INDEX series_by_key ON series(labels_id, metric_id);
                """)
        }
        // v19: version blocks are written in format 2 (shapes, columns, zstd; docs/format/versions.md) and
        // merged per lifetime class and clock hour. Nothing to rewrite here — compaction merges format-1
        // blocks a few hours at each seal — but a binary that reads only format 1 must refuse the store.
        m.registerMigration("v19") { _ in }
        // v20: the anomaly detectors' state per series (the minute it has been fed through and the
        // detector's own bytes), so that a restart continues where it stopped instead of relearning.
        m.registerMigration("v20") { db in
            try db.execute(sql: "CREATE TABLE detector_states(series_id INTEGER PRIMARY KEY, through INTEGER NOT NULL, state BLOB NOT NULL)")
        }
        // v21: `# HELP` texts of imported metric families (collected families' texts live in the binary).
        m.registerMigration("v21") { db in
            try db.execute(sql: "CREATE TABLE metric_help(name TEXT PRIMARY KEY, help TEXT NOT NULL) WITHOUT ROWID")
        }
        // v22: alert state changes are events (type 'alert', key the alert's label set, detail its JSON);
        // an index finds each alert's latest change before a time (alerts as of T).
        m.registerMigration("v22") { db in
            try db.execute(sql: "CREATE INDEX events_alerts ON events(key, t) WHERE type = 'alert'")
        }
        // v23: what was done about alerts: notifications delivered (or given up on) and remediation actions run.
        m.registerMigration("v23") { db in
            try db.execute(sql: """
                CREATE TABLE alert_deliveries(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, channel TEXT NOT NULL, alerts INTEGER NOT NULL,
                    ok INTEGER NOT NULL, attempts INTEGER NOT NULL, error TEXT);
                CREATE INDEX alert_deliveries_by_time ON alert_deliveries(t);
                CREATE TABLE action_runs(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, action TEXT NOT NULL, alert TEXT NOT NULL,
                    argv TEXT NOT NULL, dry_run INTEGER NOT NULL, status TEXT NOT NULL, millis INTEGER NOT NULL, output TEXT NOT NULL,
                    cleared INTEGER, checked_at INTEGER);
                CREATE INDEX action_runs_by_time ON action_runs(t);
                """)
        }
        // v24: silences: matchers over alert labels, a time span, who and why.
        m.registerMigration("v24") { db in
            try db.execute(sql: """
                CREATE TABLE silences(id INTEGER PRIMARY KEY, created INTEGER NOT NULL, starts INTEGER NOT NULL, ends INTEGER NOT NULL,
                    matchers TEXT NOT NULL, comment TEXT NOT NULL, author TEXT NOT NULL)
                """)
        }
        // v25: actions a hub dispatches to the agent of a host: the run names that host (`agent`), waits
        // until the agent claims it (`claimed_at`) and reports how it went (`reported_at`), and carries the
        // alert's value for the agent's environment.
        m.registerMigration("v25") { db in
            try db.execute(sql: """
                ALTER TABLE action_runs ADD COLUMN agent TEXT;
                ALTER TABLE action_runs ADD COLUMN claimed_at INTEGER;
                ALTER TABLE action_runs ADD COLUMN reported_at INTEGER;
                ALTER TABLE action_runs ADD COLUMN value REAL;
                CREATE INDEX action_runs_queued ON action_runs(agent, t) WHERE agent IS NOT NULL AND claimed_at IS NULL;
                """)
        }
        // v26: how far each remote_write destination has been sent, per host ('' for this store's own).
        m.registerMigration("v26") { db in
            try db.execute(sql: """
                CREATE TABLE remote_write_positions(destination TEXT NOT NULL, host TEXT NOT NULL, through INTEGER NOT NULL,
                    PRIMARY KEY(destination, host)) WITHOUT ROWID
                """)
        }
        return m
    }
}

/// The v17 migration: per-series chunk and rollup rows regrouped into group rows, group by group.
private enum GroupMigration {
    static func run(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE chunks RENAME TO chunks_v2;
            ALTER TABLE rollups RENAME TO rollups_v2;
            DROP INDEX IF EXISTS chunks_by_series;
            DROP INDEX IF EXISTS chunks_level0;
            DROP INDEX IF EXISTS chunks_by_min_t;
            CREATE TABLE chunks(
                id INTEGER PRIMARY KEY,
                group_id INTEGER NOT NULL,
                level INTEGER NOT NULL,
                min_t INTEGER NOT NULL,
                max_t INTEGER NOT NULL,
                count INTEGER NOT NULL,
                members BLOB NOT NULL,
                data BLOB NOT NULL);
            CREATE TABLE rollups(
                id INTEGER PRIMARY KEY,
                group_id INTEGER NOT NULL,
                tier INTEGER NOT NULL,
                start INTEGER NOT NULL,
                min_t INTEGER NOT NULL,
                max_t INTEGER NOT NULL,
                count INTEGER NOT NULL,
                members BLOB NOT NULL,
                data BLOB NOT NULL,
                UNIQUE(group_id, tier, start));
            """)
        if try db.tableExists("quarantine") {
            try db.execute(sql: "ALTER TABLE quarantine ADD COLUMN group_id INTEGER; ALTER TABLE quarantine ADD COLUMN members BLOB")
        } else {
            try db.execute(sql: StoreDoctor.quarantineSchema)
        }
        func quarantine(_ table: String, _ row: Row, _ error: any Error) throws {
            try db.execute(sql: "INSERT INTO quarantine(source, row_id, series_id, min_t, detail, data) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [table, row["id"], row["series_id"], row["min_t"], "unreadable when regrouped (v17): \(error)", row["data"] as Data?])
        }
        let groups = try Int64.fetchAll(db, sql: "SELECT DISTINCT series_id >> 6 FROM chunks_v2 UNION SELECT DISTINCT series_id >> 6 FROM rollups_v2 ORDER BY 1")
        let hour = StoragePolicy.hour, day = StoragePolicy.day
        for g in groups {
            let lo = g * GroupBlock.size, hi = lo + GroupBlock.size
            // Chunks: one row per level and hour (what compaction and the open hour's merging make).
            var buckets: [[Int64]: [Int64]] = [:] // [level, hour] → old row ids
            for row in try Row.fetchAll(db, sql: "SELECT id, level, min_t FROM chunks_v2 WHERE series_id >= ? AND series_id < ?", arguments: [lo, hi]) {
                buckets[[row["level"], floorDiv(row["min_t"], hour)], default: []].append(row["id"])
            }
            for (key, ids) in buckets.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                var series: [Int64: [(Int64, Double)]] = [:]
                for id in ids {
                    guard let row = try Row.fetchOne(db, sql: "SELECT id, series_id, min_t, data FROM chunks_v2 WHERE id = ?", arguments: [id]) else { continue }
                    do { series[row["series_id"], default: []] += try ChunkCodec.decode([UInt8](row["data"] as Data)) } catch { try quarantine("chunks", row, error) }
                }
                try TwinStore.insertChunkRow(db, level: Int(key[0]), series.mapValues(TwinStore.ordered))
            }
            // Rollups: one row per tier and day.
            var points: [[Int64]: [Int64: [RollupPoint]]] = [:] // [tier, day] → series → points
            for row in try Row.fetchAll(db, sql: "SELECT id, series_id, tier, min_t, data FROM rollups_v2 WHERE series_id >= ? AND series_id < ?", arguments: [lo, hi]) {
                do {
                    for p in try Rollup.decode([UInt8](row["data"] as Data)) {
                        points[[row["tier"], floorDiv(p.t, day) * day], default: [:]][row["series_id"], default: []].append(p)
                    }
                } catch { try quarantine("rollups", row, error) }
            }
            for (key, bySeries) in points {
                try TwinStore.writeRollupRow(db, group: g, tier: Int(key[0]), start: key[1], bySeries.mapValues { $0.sorted { $0.t < $1.t } })
            }
        }
        try db.execute(sql: """
            DROP TABLE chunks_v2;
            DROP TABLE rollups_v2;
            CREATE INDEX chunks_by_group ON chunks(group_id, max_t);
            CREATE INDEX chunks_level0 ON chunks(min_t) WHERE level = 0;
            CREATE INDEX chunks_by_min_t ON chunks(min_t);
            CREATE INDEX chunks_by_max_t ON chunks(max_t);
            """)
    }
}

/// The lifetime class of a closed version: the smallest c with lifetime <= 2^c seconds. A version of
/// class c alive at T started within 2^c s before T, so each class is searched over a window as long
/// as its lifetimes.
enum SpanClass {
    /// The longest window of class `c`, in milliseconds.
    static func window(_ c: Int) -> Int64 { c >= 52 ? .max / 2 : 1000 << Int64(c) }

    static func of(_ lifetime: Int64) -> Int {
        var c = 0
        while window(c) < lifetime { c += 1 }
        return c
    }
}

/// 64-bit FNV-1a hashes as signed integers for SQLite: of a series' stored key (`metric` then the label
/// text; the v2–v17 `series.hash` column) and of a label set's text (`label_sets.hash`).
enum SeriesHash {
    static func of(metric: String, labels: String) -> Int64 {
        var h = fnv1a(metric.utf8)
        h = fnv1a(CollectionOfOne(0xff), h) // a separator no UTF-8 text contains
        return Int64(bitPattern: fnv1a(labels.utf8, h))
    }

    static func of(labels: String) -> Int64 { Int64(bitPattern: fnv1a(labels.utf8)) }

    /// 64-bit FNV-1a over `bytes`, continuing from `h`.
    @inline(__always)
    static func fnv1a(_ bytes: some Sequence<UInt8>, _ h: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = h
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
