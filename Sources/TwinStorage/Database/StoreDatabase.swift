import Foundation
import GRDB

/// The SQL a statement is written in where the engines differ.
public enum SQLDialect: Sendable {
    case sqlite, postgres
}

/// The statements of one transaction of a store's database, whichever engine holds it. SQL uses `?`
/// placeholders and what both dialects share (``SQLText``); columns are read by position.
public protocol StoreStatements {
    var dialect: SQLDialect { get }
    /// Runs one statement; returns the rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int
    /// The rows one statement returns.
    func rows(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> [SQLRow]
    /// Runs one `INSERT` into a table whose key is `id`; returns the new row's id.
    func insert(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int64
}

extension StoreStatements {
    /// Runs one statement without arguments.
    @discardableResult
    public func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    /// The rows of a statement without arguments.
    public func rows(_ sql: String) throws -> [SQLRow] { try rows(sql, []) }

    /// The first column of the first row, if any.
    public func value(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> SQLValue? {
        try rows(sql, arguments).first?.values.first
    }
}

/// Where a store's index, chunks, state and records live: SQLite in the data directory (embedded), or
/// PostgreSQL for hubs that share one database (`TwinPostgres`). Reads see one snapshot; a write commits
/// when its body returns and rolls back when it throws.
public protocol StoreDatabase: Sendable {
    var dialect: SQLDialect { get }
    func read<T>(_ body: (any StoreStatements) throws -> T) throws -> T
    @discardableResult
    func write<T>(_ body: (any StoreStatements) throws -> T) throws -> T
    /// One statement committed on its own: PostgreSQL runs it without `BEGIN` and `COMMIT` (one round
    /// trip instead of three).
    func executeAlone(_ sql: String, _ arguments: [any SQLValueConvertible]) throws
    /// A connection of a writer's own that holds its locks, when several writers may share the database
    /// (PostgreSQL); nil when one writer has it to itself (SQLite: the data directory's lock).
    func writerSession() throws -> (any WriterSession)?
}

extension StoreDatabase {
    public func executeAlone(_ sql: String, _ arguments: [any SQLValueConvertible]) throws {
        try write { db in _ = try db.execute(sql, arguments) }
    }

    public func writerSession() throws -> (any WriterSession)? { nil }
}

/// One connection of a hub's own to a shared database: it holds the hub's session locks (its name, the
/// hosts it writes), and the hub's fenced writes (head-log rows, applied state, seals) go through it, one
/// transaction at a time, so a hub whose connection is gone — and its locks with it, free for another
/// hub to take — can write nothing more.
public protocol WriterSession: StoreDatabase {
    /// Takes the session lock `key` if no other session holds it; true when this session holds it.
    func tryLock(_ key: Int64) throws -> Bool
    /// Gives up the session lock `key`.
    func unlock(_ key: Int64) throws
    /// Ends the session, and its locks with it; later statements fail.
    func close()
}

/// The embedded engine: the store's SQLite pool for writes, ``QueryReaders`` for reads, statements cached
/// per connection.
struct SQLiteStoreDatabase: StoreDatabase {
    let pool: DatabasePool
    let readers: QueryReaders
    var dialect: SQLDialect { .sqlite }

    func read<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
        try readers.read { try body($0) }
    }

    /// One write transaction on cached `BEGIN IMMEDIATE`/`COMMIT` statements: the per-tick path skips the
    /// bookkeeping of GRDB's general transaction API (observers, savepoints), which cost more than the
    /// inserts of a tick.
    @discardableResult
    func write<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                let value = try body(db)
                try db.cachedStatement(sql: "COMMIT").execute()
                return value
            } catch {
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }
}

/// A SQLite connection (GRDB) in one of the store's transactions is the embedded engine's statements, so
/// code inside `pool.read`/`pool.write` calls the helpers written against ``StoreStatements`` as they move.
extension Database: StoreStatements {
    public var dialect: SQLDialect { .sqlite }

    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int {
        try cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return changesCount
    }

    public func rows(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> [SQLRow] {
        let statement = try cachedStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
        // Each column straight from the stepped statement: `row[i] as DatabaseValue` goes through GRDB's
        // generic decoding, whose metadata lookups were a quarter of a `state --at`.
        let raw = statement.sqliteStatement, columns = CInt(statement.columnCount)
        var out: [SQLRow] = []
        while try cursor.next() != nil {
            out.append(SQLRow((0..<columns).map { SQLValue(DatabaseValue(sqliteStatement: raw, index: $0)) }))
        }
        return out
    }

    public func insert(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int64 {
        try cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return lastInsertedRowID
    }

    static func arguments(_ values: [any SQLValueConvertible]) -> StatementArguments {
        StatementArguments(values.map { $0.sqlValue.databaseValue })
    }
}

extension SQLValue {
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let v): self = .integer(v)
        case .double(let v): self = .real(v)
        case .string(let v): self = .text(v)
        case .blob(let v): self = .blob([UInt8](v))
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .integer(let v): return v.databaseValue
        case .real(let v): return v.databaseValue
        case .text(let v): return v.databaseValue
        case .blob(let v): return Data(v).databaseValue
        }
    }
}
