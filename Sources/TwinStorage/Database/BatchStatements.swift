/// Statements over many rows at once. Each statement is a round trip to PostgreSQL (the embedded engine's
/// statements are calls into SQLite in this process), so the writer's PostgreSQL paths insert, update and
/// look up rows by the hundred: a fleet joining a hub brings hundreds of series and thousands of versions
/// per host.

/// Values per statement: PostgreSQL takes at most 65,535 parameters.
let maxStatementParameters = 60_000

extension StoreStatements {
    /// `count` new ids from `table`'s `id` identity, in one statement (PostgreSQL).
    func reserveIDs(_ table: String, _ count: Int) throws -> [Int64] {
        guard count > 0 else { return [] }
        return try rows("SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)", [table, count]).map { try $0.integer(0) }
    }

    /// Inserts `rows` (each with a value per column); `suffix` follows the values (`ON CONFLICT ...`). On
    /// PostgreSQL in as few statements as the parameter limit and `maxBytes` per statement allow; on SQLite
    /// one cached statement per row (no round trips to save, and a statement text per row count would fill
    /// the connection's statement cache).
    func insertRows(_ table: String, _ columns: [String], _ rows: [[SQLValue]], suffix: String = "", maxBytes: Int = 8 << 20) throws {
        guard !rows.isEmpty else { return }
        let head = "INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES "
        let tuple = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        guard dialect == .postgres else {
            let one = head + tuple + (suffix.isEmpty ? "" : " " + suffix)
            for row in rows { try execute(one, row) }
            return
        }
        var values: [any SQLValueConvertible] = []
        var pending = 0, bytes = 0
        func flush() throws {
            guard pending > 0 else { return }
            try execute(head + Array(repeating: tuple, count: pending).joined(separator: ", ") + (suffix.isEmpty ? "" : " " + suffix), values)
            values.removeAll(keepingCapacity: true)
            pending = 0
            bytes = 0
        }
        for row in rows {
            precondition(row.count == columns.count, "a row of \(row.count) values for \(columns.count) columns")
            values += row as [any SQLValueConvertible]
            pending += 1
            bytes += row.reduce(0) { $0 + $1.byteCount }
            if (pending + 1) * columns.count > maxStatementParameters || bytes >= maxBytes { try flush() }
        }
        try flush()
    }

    /// The rows of `select` for keys given as tuples of `width` values: `select` ends with
    /// `IN (VALUES ...)`'s opening, e.g. `... WHERE (a, b) IN (VALUES`, and gets the tuples, `)` and `then`
    /// appended, as many keys per statement as the parameter limit allows; `leading` are the values of
    /// the placeholders before the tuples. `casts` types each position of the first tuple (PostgreSQL infers
    /// the rest from it). With `then` (an `ORDER BY`), the order holds within each statement.
    func rows(_ select: String, leading: [SQLValue] = [], keys: [[SQLValue]], casts: [String], then: String = "") throws -> [SQLRow] {
        guard !keys.isEmpty else { return [] }
        let width = casts.count
        let first = "(" + casts.map { "?::" + $0 }.joined(separator: ", ") + ")"
        let tuple = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        var out: [SQLRow] = []
        let per = (maxStatementParameters - leading.count) / width
        for start in stride(from: 0, to: keys.count, by: per) {
            let part = keys[start..<min(start + per, keys.count)]
            let sql = select + " " + ([first] + Array(repeating: tuple, count: part.count - 1)).joined(separator: ", ") + ")" + (then.isEmpty ? "" : " " + then)
            out += try rows(sql, (leading + part.flatMap { $0 }) as [any SQLValueConvertible])
        }
        return out
    }
}

extension SQLValue {
    /// About what the value takes in a statement.
    var byteCount: Int {
        switch self {
        case .null: return 1
        case .integer, .real: return 8
        case .text(let s): return s.utf8.count
        case .blob(let b): return b.count
        }
    }
}
