import Foundation
import GRDB
import TwinCore

/// What `hosttwin check` found in a data directory.
public struct CheckReport: Sendable, Encodable {
    /// One problem: the file (and record) it is in, and what is wrong.
    public struct Problem: Sendable, Encodable {
        public var file: String
        public var item: String
        public var detail: String
    }
    public var dataDir: String
    public var problems: [Problem] = []
    public var chunks = 0
    public var rollupBlocks = 0
    public var samples = 0
    public var logSegments = 0
    public var logSamples = 0
    public var versions = 0
    public var writerRunning = false
    public var ok: Bool { problems.isEmpty }

    enum CodingKeys: String, CodingKey {
        case dataDir = "data_dir", problems, chunks, rollupBlocks = "rollup_blocks", samples, logSegments = "log_segments"
        case logSamples = "log_samples", versions, writerRunning = "writer_running", ok
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataDir, forKey: .dataDir)
        try c.encode(problems, forKey: .problems)
        try c.encode(chunks, forKey: .chunks)
        try c.encode(rollupBlocks, forKey: .rollupBlocks)
        try c.encode(samples, forKey: .samples)
        try c.encode(logSegments, forKey: .logSegments)
        try c.encode(logSamples, forKey: .logSamples)
        try c.encode(versions, forKey: .versions)
        try c.encode(writerRunning, forKey: .writerRunning)
        try c.encode(ok, forKey: .ok)
    }
}

/// What `hosttwin repair` did.
public struct RepairReport: Sendable, Encodable {
    public var actions: [String] = []
    public var check: CheckReport
}

/// Consistency checks and salvage of a data directory.
public enum StoreDoctor {
    /// Reads everything: SQLite's integrity check, every chunk and rollup block (checksums and decoding),
    /// every state version's attributes, every log segment. Never writes.
    public static func check(dataDir: String) throws -> CheckReport {
        var report = CheckReport(dataDir: dataDir)
        let dbPath = TwinStore.databasePath(dataDir)
        report.writerRunning = writerRunning(dataDir)
        let store: TwinStore
        do { store = try TwinStore.open(dataDir: dataDir, readOnly: true) } catch {
            report.problems.append(.init(file: dbPath, item: "database", detail: "\(error)"))
            return report
        }
        do {
            for line in try store.integrityCheck() { report.problems.append(.init(file: dbPath, item: "sqlite", detail: line)) }
        } catch {
            report.problems.append(.init(file: dbPath, item: "sqlite", detail: "\(error)"))
        }
        let sealed: UInt64
        var problems: [CheckReport.Problem] = []
        var chunks = 0, samples = 0, blocks = 0, versions = 0
        do {
            sealed = try store.pool.read { db -> UInt64 in
                try scanRows(db, "chunks", TwinStore.chunkColumns, &problems, file: dbPath) { row in
                    samples += try TwinStore.verifyChunkRow(row)
                    chunks += 1
                }
                try scanRows(db, "rollups", TwinStore.rollupColumns, &problems, file: dbPath) { row in
                    try TwinStore.verifyRollupRow(row)
                    blocks += 1
                }
                try scanRows(db, "versions", "id, attributes", &problems, file: dbPath) { row in
                    _ = try AttributeJSON.decode(row[1], .sqlite, where: "versions row \(row[0].int64 ?? -1)")
                    versions += 1
                }
                try scanRows(db, "version_blocks", "id, data, count, min_from, max_to", &problems, file: dbPath) { row in
                    let id = row[0].int64 ?? -1
                    let list: [EntityVersion]
                    do { list = try VersionCodec.decode(row[1].bytes ?? []) } catch {
                        throw TwinError.corrupt(what: "version block \(id)", detail: "\(error)")
                    }
                    guard list.count == row[2].int64.map(Int.init), list.map(\.validFrom).min() == row[3].int64, list.compactMap(\.validTo).max() == row[4].int64 else {
                        throw TwinError.corrupt(what: "version block \(id)", detail: "its index row disagrees with its contents")
                    }
                    versions += list.count
                }
                return try TwinStore.meta(db, "log_sealed").flatMap { UInt64($0) } ?? 0
            }
        } catch {
            report.problems.append(.init(file: dbPath, item: "tables", detail: "\(error)"))
            return report
        }
        report.problems += problems
        report.chunks = chunks
        report.samples = samples
        report.rollupBlocks = blocks
        report.versions = versions
        for seg in LogSegment.list(dataDir) where seg.seq > sealed {
            do {
                let scan = try LogSegment.scan(seg.path) { _, _, _ in }
                report.logSegments += 1
                report.logSamples += scan.samples
                if let damage = scan.damage {
                    report.problems.append(.init(file: seg.path, item: "log segment", detail: "\(damage); \(scan.fileBytes - scan.validBytes) bytes after byte \(scan.validBytes) cannot be read"))
                }
            } catch {
                report.problems.append(.init(file: seg.path, item: "log segment", detail: "\(error)"))
            }
        }
        return report
    }

    /// Reads `table` row by row; a row that fails `body` is a problem, not the end of the check.
    private static func scanRows(_ db: Database, _ table: String, _ columns: String, _ problems: inout [CheckReport.Problem], file: String,
                                 _ body: (SQLRow) throws -> Void) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT \(columns) FROM \(table) ORDER BY rowid")
        while true {
            let row: Row?
            do { row = try rows.next() } catch {
                problems.append(.init(file: file, item: table, detail: "cannot read further rows: \(error)"))
                return
            }
            guard let row else { return }
            let values = SQLRow((0..<row.count).map { SQLValue(row[$0] as DatabaseValue) })
            do { try body(values) } catch {
                problems.append(.init(file: file, item: "\(table) row \(values[0].int64 ?? -1)", detail: "\(error)"))
            }
        }
    }

    /// Whether a writer holds the directory's lock.
    public static func writerRunning(_ dataDir: String) -> Bool {
        let fd = open(dataDir + "/writer.lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return true
    }

    /// Salvages what is intact. Damaged chunks and rollup blocks move to the `quarantine` table (kept,
    /// not deleted) and leave the index; a damaged log segment is copied aside (`….damaged`) and cut at
    /// its last good record; a database SQLite itself reports damaged is rebuilt row by row into a new
    /// file, the old one kept as `twin.db.damaged-<time>`. Refuses while a writer runs.
    public static func repair(dataDir: String) throws -> RepairReport {
        guard !writerRunning(dataDir) else {
            throw TwinError.unavailable("a HostTwin writer is using \(dataDir); stop `hosttwin run` (or the import) before repairing")
        }
        var actions: [String] = []
        let before = try check(dataDir: dataDir)
        let dbPath = TwinStore.databasePath(dataDir)
        if before.problems.contains(where: { $0.item == "sqlite" || $0.item == "database" || $0.item == "tables" || $0.detail.contains("cannot read further rows") }) {
            actions.append(contentsOf: try rebuildDatabase(dataDir))
        }
        let store = try TwinStore.open(dataDir: dataDir)
        var quarantined = 0
        try store.pool.write { db in
            try db.execute(sql: quarantineSchema)
            for (table, columns) in [("chunks", TwinStore.chunkColumns), ("rollups", TwinStore.rollupColumns)] {
                for row in try db.rows("SELECT \(columns) FROM \(table)") {
                    do {
                        if table == "chunks" { _ = try TwinStore.verifyChunkRow(row) } else { try TwinStore.verifyRollupRow(row) }
                    } catch {
                        // min_t is column 2 of a chunk row, 3 of a rollup row; members and data are the last two of both.
                        let n = row.values.count
                        try db.execute("INSERT INTO quarantine(source, row_id, group_id, min_t, detail, members, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                       [table, row[0], row[1], row[table == "chunks" ? 2 : 3], "\(error)", row[n - 2], row[n - 1]])
                        try db.execute("DELETE FROM \(table) WHERE id = ?", [row[0]])
                        quarantined += 1
                    }
                }
            }
        }
        if quarantined > 0 { actions.append("moved \(quarantined) damaged chunk/rollup rows to the quarantine table of \(dbPath)") }
        for p in before.problems where p.item == "log segment" {
            guard let data = FileManager.default.contents(atPath: p.file) else { continue }
            let scan = try LogSegment.scan(p.file) { _, _, _ in }
            try data.write(to: URL(fileURLWithPath: p.file + ".damaged"))
            if scan.validBytes >= LogSegment.headerSize {
                _ = truncate(p.file, off_t(scan.validBytes))
                actions.append("cut \(p.file) after its last good record (\(scan.records) records, \(scan.samples) samples kept; \(scan.fileBytes - scan.validBytes) bytes dropped; original kept as \(p.file).damaged)")
            } else {
                unlink(p.file)
                actions.append("removed \(p.file), unreadable from its header (original kept as \(p.file).damaged)")
            }
        }
        if actions.isEmpty { actions.append("nothing to repair") }
        return RepairReport(actions: actions, check: try check(dataDir: dataDir))
    }

    static let quarantineSchema = """
        CREATE TABLE IF NOT EXISTS quarantine(id INTEGER PRIMARY KEY, source TEXT NOT NULL, row_id INTEGER, series_id INTEGER, min_t INTEGER,
            detail TEXT, data BLOB, group_id INTEGER, members BLOB)
        """

    /// Copies every readable row of every table into a fresh database and swaps it in.
    private static func rebuildDatabase(_ dataDir: String) throws -> [String] {
        let dbPath = TwinStore.databasePath(dataDir)
        let fresh = dataDir + "/twin.db.rebuilding"
        for suffix in ["", "-wal", "-shm"] { unlink(fresh + suffix) }
        var config = Configuration()
        config.readonly = true
        let source = try DatabaseQueue(path: dbPath, configuration: config)
        let target = try DatabaseQueue(path: fresh)
        try Schema.migrator().migrate(target)
        try target.write { db in try db.execute(sql: quarantineSchema) }
        var copied = 0, lost = 0
        // Every table of the damaged file that the schema knows (migrations' own bookkeeping is the target's).
        let tables = ((try? source.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name")
        }) ?? ["meta", "series", "chunks", "rollups", "versions", "version_blocks", "events", "runs", "health", "tokens", "quarantine"])
        for table in tables {
            let maxRow = (try? source.read { db in try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM \(table)") }) ?? nil
            guard let maxRow else { continue }
            var start: Int64 = 0
            while start <= maxRow {
                let window = start..<(start + 256)
                var rows: [Row]? = try? source.read { db in try Row.fetchAll(db, sql: "SELECT rowid AS _rowid_, * FROM \(table) WHERE rowid >= ? AND rowid < ?", arguments: [window.lowerBound, window.upperBound]) }
                if rows == nil { // read the window row by row, skipping what cannot be read
                    rows = []
                    for r in window {
                        do {
                            if let one = try source.read({ db in try Row.fetchOne(db, sql: "SELECT rowid AS _rowid_, * FROM \(table) WHERE rowid = ?", arguments: [r]) }) {
                                rows!.append(one)
                            }
                        } catch { lost += 1 }
                    }
                }
                try target.write { db in
                    for row in rows! {
                        let cols = Array(row.columnNames)
                        let sql = "INSERT OR REPLACE INTO \(table)(rowid, \(cols.dropFirst().joined(separator: ", "))) VALUES (\(cols.map { _ in "?" }.joined(separator: ", ")))"
                        try db.execute(sql: sql, arguments: StatementArguments(cols.indices.map { row[$0] as DatabaseValue }))
                        copied += 1
                    }
                }
                start += 256
            }
        }
        try source.close()
        try target.close()
        let aside = dbPath + ".damaged-\(TwinTime.nowMillis())"
        try FileManager.default.moveItem(atPath: dbPath, toPath: aside)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.moveItem(atPath: dbPath + suffix, toPath: aside + suffix) }
        try FileManager.default.moveItem(atPath: fresh, toPath: dbPath)
        return ["rebuilt \(dbPath) from \(copied) readable rows (\(lost) unreadable rows lost); the damaged file is kept as \(aside)"]
    }
}
