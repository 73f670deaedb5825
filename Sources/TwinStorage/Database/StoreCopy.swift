import Foundation
import TwinCore

/// Copies an embedded store's tables into a store whose tables are in PostgreSQL (`hosttwin migrate`), and
/// checks the copy: per table, the rows and a digest of them read back from each engine.
///
/// The copy is one PostgreSQL transaction, so a failed migration leaves the destination as it was. Rows
/// keep their ids (chunk groups, series and versions refer to each other by id), each identity sequence
/// then continues after the largest id. Values take the destination column's type; the attribute JSON of
/// `versions` changes form (SQLite's TEXT-or-BLOB to the tagged `bytea`, ``AttributeJSON/Tag``) without
/// being re-encoded. The table digest is order-independent: the wrapping sum of a 64-bit hash of each row
/// (FNV-1a over the row's values, mixed), so it detects a row missing, doubled or changed.
public enum StoreCopy {
    /// One table's copy.
    public struct Table: Sendable, Codable, Equatable {
        public var table: String
        public var rows: Int
        /// The digest of the source's rows in the destination's form.
        public var digest: String
        /// The same, read back from the destination.
        public var copiedRows: Int
        public var copiedDigest: String
        public var matches: Bool { rows == copiedRows && digest == copiedDigest }

        enum CodingKeys: String, CodingKey {
            case table, rows, digest
            case copiedRows = "copied_rows"
            case copiedDigest = "copied_digest"
        }
    }

    /// A destination column: its name and PostgreSQL type.
    struct Column {
        var name: String
        var type: String
    }

    /// The tables of PostgreSQL's schema, in the order they are created, but `head_log` (the source's head
    /// log is sealed before the copy; the destination's starts empty) and `audit_log` (the source's audit
    /// log stays a file in its data directory; the hub's chain starts in the table).
    static var tables: [String] {
        var seen = Set<String>()
        return PostgresSchema.migrations.flatMap(\.statements).compactMap { statement in
            // Tables with columns (not partitions: their rows are the parent's), each once (partitioning
            // creates a table again).
            guard statement.hasPrefix("CREATE TABLE "), !statement.contains(" PARTITION OF ") else { return nil }
            let table = String(statement.dropFirst("CREATE TABLE ".count).prefix { $0 != "(" })
            return table == "head_log" || table == "audit_log" || !seen.insert(table).inserted ? nil : table
        }
    }

    /// Rows per read.
    static let batchRows = 500

    /// Copies every table of `source` (embedded) into `destination` (PostgreSQL, migrated and empty) in one
    /// transaction. `progress` gets each table's name and rows copied so far.
    public static func copy(from source: TwinStore, to destination: TwinStore, progress: (String, Int) -> Void = { _, _ in }) throws {
        guard source.database.dialect == .sqlite, destination.database.dialect == .postgres else {
            throw TwinError.badInput("migrate copies an embedded store into PostgreSQL")
        }
        try destination.database.write { pg in
            for table in tables + ["head_log", "audit_log"] {
                let n = try pg.value("SELECT count(*) FROM \(table)")?.int64 ?? 0
                guard n == 0 else {
                    throw TwinError.badInput("the destination already holds HostTwin data (\(n) rows in \(table)); migrate into an empty database")
                }
            }
            for table in tables {
                let columns = try destinationColumns(pg, table)
                var copied = 0
                try eachBatch(source.database, table, columns) { rows in
                    try pg.insertRows(table, columns.map(\.name), try rows.map { try convert($0, table, columns) })
                    copied += rows.count
                    progress(table, copied)
                }
                if columns.contains(where: { $0.name == "id" && $0.type == "bigint" }),
                   try pg.value("SELECT pg_get_serial_sequence(?, 'id')", [table]) != .null {
                    try pg.execute("SELECT setval(pg_get_serial_sequence(?, 'id'), coalesce(max(id), 0) + 1, false) FROM \(table)", [table])
                }
            }
        }
    }

    /// Seals what `store`'s head log holds (as a writer's start would), then holds the writer's lock while
    /// `body` runs, so no `run` or `serve` changes the tables being copied.
    public static func whileSealedAndLocked<T>(_ store: TwinStore, _ body: () throws -> T) throws -> T {
        let writer = TwinWriter(store: store)
        try writer.open()
        try writer.finish(now: TwinTime.nowMillis())
        let lock = try DirectoryLock.acquire(dataDir: store.dataDir)
        defer { lock.release() }
        guard LogSegment.list(store.dataDir).isEmpty else {
            throw TwinError.unavailable("another writer used \(store.dataDir) meanwhile; run migrate again once it has stopped")
        }
        return try body()
    }

    /// Rows `hosttwin repair` set aside in an embedded store: they are not copied (the PostgreSQL schema has
    /// no quarantine table).
    public static func quarantinedRows(_ store: TwinStore) throws -> Int64 {
        try store.database.read { try $0.value("SELECT count(*) FROM quarantine")?.int64 ?? 0 }
    }

    /// Each table's rows and digest in `source` (converted as copied) and in `destination`.
    public static func verify(source: TwinStore, destination: TwinStore) throws -> [Table] {
        let columnsByTable = try destination.database.read { pg in try tables.map { ($0, try destinationColumns(pg, $0)) } }
        return try columnsByTable.map { table, columns in
            var a = (rows: 0, sum: UInt64(0)), b = (rows: 0, sum: UInt64(0))
            try eachBatch(source.database, table, columns) { rows in
                for r in rows { a.rows += 1; a.sum &+= hash(try convert(r, table, columns)) }
            }
            try eachBatch(destination.database, table, columns) { rows in
                for r in rows { b.rows += 1; b.sum &+= hash(r.values) }
            }
            return Table(table: table, rows: a.rows, digest: hex(a.sum), copiedRows: b.rows, copiedDigest: hex(b.sum))
        }
    }

    static func destinationColumns(_ pg: any StoreStatements, _ table: String) throws -> [Column] {
        let columns = try pg.rows("SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", [table])
            .map { Column(name: try $0.text(0), type: try $0.text(1)) }
        guard !columns.isEmpty else { throw TwinError.unavailable("the destination has no table \(table)") }
        return columns
    }

    /// Reads `table`'s `columns` in batches: tables with an `id` by id, the others (small: tokens, positions,
    /// metadata) in one read.
    static func eachBatch(_ database: any StoreDatabase, _ table: String, _ columns: [Column], _ body: ([SQLRow]) throws -> Void) throws {
        let names = columns.map(\.name).joined(separator: ", ")
        guard let idIndex = columns.firstIndex(where: { $0.name == "id" && $0.type == "bigint" }) else {
            try body(try database.read { try $0.rows("SELECT \(names) FROM \(table)") })
            return
        }
        var after = Int64.min
        while true {
            let rows = try database.read { try $0.rows("SELECT \(names) FROM \(table) WHERE id > ? ORDER BY id LIMIT \(batchRows)", [after]) }
            guard let last = rows.last else { return }
            try body(rows)
            after = try last.integer(idIndex)
        }
    }

    /// A source row in the destination's types.
    static func convert(_ row: SQLRow, _ table: String, _ columns: [Column]) throws -> [SQLValue] {
        try zip(row.values, columns).map { value, column in
            switch (value, column.type) {
            case (.null, _): return .null
            case (_, "bytea") where table == "versions" && column.name == "attributes":
                switch value {
                case .text(let s): return .blob([AttributeJSON.Tag.json.rawValue] + Array(s.utf8))
                case .blob(let b): return .blob([AttributeJSON.Tag.deflated.rawValue] + b)
                default: throw TwinError.corrupt(what: "versions.attributes", detail: "neither text nor a blob")
                }
            case (.text(let s), "bytea"): return .blob(Array(s.utf8))
            case (.integer(let i), "double precision"): return .real(Double(i))
            case (.real(let d), "bigint") where d == d.rounded() && abs(d) < 0x1p62: return .integer(Int64(d))
            case (.integer, "bigint"), (.real, "double precision"), (.text, "text"), (.blob, "bytea"): return value
            default: throw TwinError.corrupt(what: "\(table).\(column.name)", detail: "a value of the wrong type for \(column.type): \(value)")
            }
        }
    }

    /// FNV-1a over a row's values (a kind byte, then the value's bits or bytes), finished with SplitMix64's
    /// mixer so that sums of row hashes do not cancel.
    static func hash(_ values: [SQLValue]) -> UInt64 {
        var h = TwinDigest.FNV()
        for v in values {
            switch v {
            case .null: h.add(UInt8(0))
            case .integer(let i): h.add(UInt8(1)); h.add(UInt64(bitPattern: i))
            case .real(let d): h.add(UInt8(2)); h.add(d.bitPattern)
            case .text(let s): h.add(UInt8(3)); h.add(UInt64(s.utf8.count)); for b in s.utf8 { h.add(b) }
            case .blob(let b): h.add(UInt8(4)); h.add(UInt64(b.count)); for x in b { h.add(x) }
            }
        }
        return SeededRandom.mix(h.value)
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

