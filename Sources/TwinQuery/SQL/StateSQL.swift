import Foundation
import GRDBSQLite
import TwinCore
import TwinStorage

/// Read-only SQL over the state of the host as of a time T.
///
/// The views (`processes`, `listening_ports`, ... `host`) are materialized as tables of a private
/// in-memory SQLite database holding only the entities valid at T, so a query can never reach the
/// store's own file. The connection is guarded as well: an authorizer allows reading and plain
/// functions only (no writes, ATTACH, PRAGMA, file or extension functions), a progress handler
/// enforces the time and memory limits, and stepping stops at the row and result-size limits.
public struct StateSQL {
    /// What one query may use.
    public struct Limits: Sendable {
        public var maxRows = 10_000
        /// Milliseconds.
        public var timeout: Int64 = 2_000
        public var maxQueryBytes = 100_000
        /// The most heap SQLite may grow by while the query runs (bytes): a recursive CTE or a sort
        /// cannot hold more than this before it is stopped.
        public var maxMemoryBytes: Int64 = 64 << 20
        /// The largest answer (bytes of values), and the largest string or blob a query may build.
        public var maxResultBytes = 16 << 20
        public var maxValueBytes: Int32 = 1 << 20
        public init() {}
    }

    /// Columns and rows of an answer; values keep their SQLite types.
    public struct Result: Sendable {
        public var columns: [String]
        public var rows: [[AttributeValue]]
    }

    /// A query refused or stopped, with an API error type (`bad_data`, `forbidden`, `execution`,
    /// `timeout`) and a message saying why and what to do.
    public struct Refusal: Error, CustomStringConvertible {
        public var type: String
        public var message: String
        public var description: String { message }
    }

    /// The views, one per entity kind (named as the kinds).
    public static let viewNames: [String] = EntityKind.allCases.map(\.rawValue)

    let store: TwinStore
    let limits: Limits
    /// Applied to the versions before they fill the views (what the caller may see).
    public var present: (([EntityVersion]) -> [EntityVersion])?

    public init(store: TwinStore, limits: Limits = Limits()) {
        self.store = store
        self.limits = limits
    }

    /// Runs one SELECT as of `at`.
    public func run(_ sql: String, at: Int64) throws -> Result {
        guard sql.utf8.count <= limits.maxQueryBytes else {
            throw Refusal(type: "bad_data", message: "query longer than \(limits.maxQueryBytes) bytes")
        }
        let db = try MemoryDatabase()
        // Materialize only the views the query names.
        let words = Set(sql.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init))
        for kind in EntityKind.allCases where words.contains(kind.rawValue) {
            try materialize(kind, at: at, into: db)
        }
        return try db.query(sql, limits: limits)
    }

    private func materialize(_ kind: EntityKind, at: Int64, into db: MemoryDatabase) throws {
        let stored = try store.state(at: at, kinds: [kind])
        let versions = present?(stored) ?? stored
        var names = try store.attributeNames(kind: kind)
        for v in versions { names.formUnion(v.attributes.keys) }
        names.subtract(["key", "valid_from", "valid_to"])
        let attrs = names.sorted()
        let columns = ["key"] + attrs + ["valid_from", "valid_to"]
        try db.execute("CREATE TABLE \(kind.rawValue)(" + columns.map { "\"\($0)\"" }.joined(separator: ", ") + ")")
        try db.insert(table: kind.rawValue, columns: columns.count, rows: versions.map { v in
            [.string(v.key)] + attrs.map { v.attributes[$0] ?? .null } + [.string(TwinTime.rfc3339(v.validFrom)), v.validTo.map { .string(TwinTime.rfc3339($0)) } ?? .null]
        })
    }
}

/// A private in-memory SQLite connection (the raw C API: GRDB keeps its own authorizer on its
/// connections).
final class MemoryDatabase {
    private var db: OpaquePointer?
    /// Set by the authorizer when it denies something, for the error message.
    fileprivate var denied: String?
    fileprivate var deadline: Int64 = .max
    /// SQLite's heap (all connections of the process) beyond which the query is stopped.
    fileprivate var memoryCeiling: Int64 = .max
    fileprivate var overMemory = false
    fileprivate var guarded = false

    init() throws {
        guard sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK else {
            throw StateSQL.Refusal(type: "internal", message: "cannot open an in-memory SQLite database")
        }
        sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0)
        // Sorts, DISTINCT and UNION keep their temporary tables in memory, where the query's memory cap
        // stops them, instead of writing gigabytes of temporary files.
        sqlite3_exec(db, "PRAGMA temp_store = MEMORY", nil, nil, nil)
    }

    deinit { sqlite3_close_v2(db) }

    private var message: String { db.flatMap { String(cString: sqlite3_errmsg($0)) } ?? "unknown error" }

    func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw StateSQL.Refusal(type: "internal", message: "cannot build the state tables: \(message)")
        }
    }

    func insert(table: String, columns: Int, rows: [[AttributeValue]]) throws {
        try execute("BEGIN")
        var stmt: OpaquePointer?
        let sql = "INSERT INTO \(table) VALUES (" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { throw StateSQL.Refusal(type: "internal", message: message) }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for row in rows {
            for (i, v) in row.enumerated() {
                let idx = Int32(i + 1)
                switch v {
                case .string(let s): sqlite3_bind_text(stmt, idx, s, -1, transient)
                case .int(let x): sqlite3_bind_int64(stmt, idx, x)
                case .double(let x): sqlite3_bind_double(stmt, idx, x)
                case .bool(let b): sqlite3_bind_int64(stmt, idx, b ? 1 : 0)
                case .null: sqlite3_bind_null(stmt, idx)
                }
            }
            guard sqlite3_step(stmt) == SQLITE_DONE else { throw StateSQL.Refusal(type: "internal", message: message) }
            sqlite3_reset(stmt)
        }
        try execute("COMMIT")
    }

    /// Functions that could read or write files or load code; denied even though a stock libsqlite3
    /// lacks most of them.
    static let deniedFunctions: Set<String> = ["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress", "sqlar_uncompress", "lsmode"]

    /// Runs one read-only statement under the authorizer, time limit and row limit.
    func query(_ sql: String, limits: StateSQL.Limits) throws -> StateSQL.Result {
        let me = Unmanaged.passUnretained(self).toOpaque()
        guarded = true
        sqlite3_set_authorizer(db, { ctx, action, arg1, arg2, _, _ in
            let me = Unmanaged<MemoryDatabase>.fromOpaque(ctx!).takeUnretainedValue()
            guard me.guarded else { return SQLITE_OK }
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_RECURSIVE:
                return SQLITE_OK
            case SQLITE_FUNCTION:
                let name = arg2.map { String(cString: $0) } ?? ""
                if MemoryDatabase.deniedFunctions.contains(name.lowercased()) {
                    me.denied = "the function \(name)() is not allowed: queries may not touch files or load code"
                    return SQLITE_DENY
                }
                return SQLITE_OK
            case SQLITE_PRAGMA:
                me.denied = "PRAGMA \(arg1.map { String(cString: $0) } ?? "") is not allowed: the state is read-only"
            case SQLITE_ATTACH, SQLITE_DETACH:
                me.denied = "ATTACH and DETACH are not allowed: queries see the state views only"
            case SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE:
                let table = arg1.map { String(cString: $0) } ?? ""
                if table == "sqlite_master" || table == "sqlite_schema" || table == "sqlite_temp_master" {
                    me.denied = "changing tables (CREATE, DROP, ALTER) is not allowed: the state is read-only"
                } else {
                    me.denied = "writing (\(action == SQLITE_INSERT ? "INSERT" : action == SQLITE_UPDATE ? "UPDATE" : "DELETE")) is not allowed: the state is read-only"
                }
            case SQLITE_TRANSACTION, SQLITE_SAVEPOINT:
                me.denied = "transactions are not allowed: each query runs alone, read-only"
            default:
                me.denied = "only SELECT is allowed (read-only SQL over the state views)"
            }
            return SQLITE_DENY
        }, me)
        defer { guarded = false }
        deadline = TwinTime.nowMillis() + limits.timeout
        // SQLite counts its heap for the whole process; the query may grow it by its allowance. Another
        // query running at once shares that allowance, which errs on the side of stopping.
        memoryCeiling = sqlite3_memory_used() + limits.maxMemoryBytes
        sqlite3_limit(db, SQLITE_LIMIT_LENGTH, limits.maxValueBytes)
        sqlite3_progress_handler(db, 1000, { ctx in
            let me = Unmanaged<MemoryDatabase>.fromOpaque(ctx!).takeUnretainedValue()
            if sqlite3_memory_used() > me.memoryCeiling { me.overMemory = true; return 1 }
            return TwinTime.nowMillis() > me.deadline ? 1 : 0
        }, me)

        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let prepared: Int32 = sql.withCString { text in
            let rc = sqlite3_prepare_v2(db, text, -1, &stmt, &tail)
            if rc == SQLITE_OK, let tail, String(cString: tail).trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: ";"))).isEmpty == false {
                sqlite3_finalize(stmt)
                stmt = nil
                return -1
            }
            return rc
        }
        if prepared == -1 { throw StateSQL.Refusal(type: "bad_data", message: "one statement per query, please (found more after the first ';')") }
        guard prepared == SQLITE_OK, let stmt else {
            if let d = denied { throw StateSQL.Refusal(type: "forbidden", message: d) }
            throw StateSQL.Refusal(type: "bad_data", message: "SQL error: \(message). Views: \(StateSQL.viewNames.joined(separator: ", "))")
        }
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_stmt_readonly(stmt) != 0 else { throw StateSQL.Refusal(type: "forbidden", message: "only SELECT is allowed (read-only SQL over the state views)") }

        let n = sqlite3_column_count(stmt)
        let columns = (0..<n).map { String(cString: sqlite3_column_name(stmt, $0)) }
        var rows: [[AttributeValue]] = []
        var resultBytes = 0
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            if rc == SQLITE_INTERRUPT, overMemory {
                throw StateSQL.Refusal(type: "execution", message: "query needed more than \(limits.maxMemoryBytes >> 20) MiB of memory and was stopped; narrow it with WHERE or LIMIT")
            }
            if rc == SQLITE_INTERRUPT {
                throw StateSQL.Refusal(type: "timeout", message: "query ran longer than \(limits.timeout) ms and was stopped; narrow it with WHERE or LIMIT")
            }
            if rc == SQLITE_TOOBIG {
                throw StateSQL.Refusal(type: "execution", message: "query built a value larger than \(limits.maxValueBytes) bytes and was stopped")
            }
            guard rc == SQLITE_ROW else {
                if let d = denied { throw StateSQL.Refusal(type: "forbidden", message: d) }
                throw StateSQL.Refusal(type: "execution", message: "SQL error: \(message)")
            }
            guard rows.count < limits.maxRows else {
                throw StateSQL.Refusal(type: "execution", message: "query returned more than \(limits.maxRows) rows; add a LIMIT or a WHERE")
            }
            rows.append((0..<n).map { i in
                resultBytes += 8
                switch sqlite3_column_type(stmt, i) {
                case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
                case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, i))
                case SQLITE_NULL: return .null
                case SQLITE_BLOB: return .string("<blob \(sqlite3_column_bytes(stmt, i)) bytes>")
                default:
                    let text = String(cString: sqlite3_column_text(stmt, i))
                    resultBytes += text.utf8.count
                    return .string(text)
                }
            })
            guard resultBytes <= limits.maxResultBytes else {
                throw StateSQL.Refusal(type: "execution", message: "the answer is larger than \(limits.maxResultBytes >> 20) MiB; select fewer columns or rows")
            }
        }
        return StateSQL.Result(columns: columns, rows: rows)
    }
}
