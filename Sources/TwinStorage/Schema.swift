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
        return m
    }
}
