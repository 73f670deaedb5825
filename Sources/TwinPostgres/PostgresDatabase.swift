import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import TwinCore
import TwinStorage

/// A PostgreSQL database a hub's store lives in (`--store postgres://...`), reached with postgres-nio.
///
/// The store's reads and writes are synchronous (as they are on SQLite), so each transaction takes an
/// idle connection, runs its statements one after another and waits for each answer on the calling
/// thread; the connections' event loop is this database's own. Never call it from that event loop.
public final class PostgresDatabase: StoreDatabase {
    /// Where the database is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`).
    public struct Location: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String

        public init(url: String) throws {
            guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
                throw TwinError.badInput("--store \(Self.redacted(url)): expected postgres://USER@HOST[:PORT]/DATABASE")
            }
            guard let host = u.host, !host.isEmpty else { throw TwinError.badInput("--store \(Self.redacted(url)): no host") }
            guard let user = u.user, !user.isEmpty else { throw TwinError.badInput("--store \(Self.redacted(url)): no user (postgres://USER@HOST/DATABASE)") }
            let database = String(u.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else { throw TwinError.badInput("--store \(Self.redacted(url)): no database name (postgres://USER@HOST/DATABASE)") }
            self.host = host
            port = u.port ?? 5432
            self.user = user.removingPercentEncoding ?? user
            password = u.password.map { $0.removingPercentEncoding ?? $0 }
            self.database = database.removingPercentEncoding ?? database
        }

        /// The URL without its password, for logs and errors.
        public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

        static func redacted(_ url: String) -> String {
            guard var u = URLComponents(string: url) else { return "(unparseable URL)" }
            if u.password != nil { u.password = "***" }
            return u.string ?? "(unparseable URL)"
        }
    }

    public let location: Location
    public var dialect: SQLDialect { .postgres }
    private let loop = EventLoopOwner()
    private let idle = Mutex<[PostgresConnection]>([])
    private let nextID = Atomic<Int>(1)
    private let logger: Logger
    /// Idle connections kept; more are opened while transactions run at once.
    static let keep = 8
    /// How long a statement may go unanswered before its connection is closed (and the statement fails).
    public let statementLimit: TimeAmount

    /// Connects once to check the location and the credentials.
    public init(url: String, statementLimit: TimeAmount = .seconds(300), logger: Logger = Logger(label: "hosttwin.postgres")) throws {
        location = try Location(url: url)
        self.logger = logger
        self.statementLimit = statementLimit
        let first = try connect()
        idle.withLock { $0.append(first) }
    }

    deinit {
        for c in idle.withLock({ $0 }) { Self.close(c) }
    }

    private func connect() throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: .disable)
        do {
            return try PostgresConnection.connect(on: loop.group.next(), configuration: configuration, id: nextID.add(1, ordering: .relaxed).oldValue,
                                                  logger: logger).wait()
        } catch {
            throw TwinError.unavailable("cannot connect to \(location.description): \(Self.message(error))")
        }
    }

    /// A transaction's statements, run on one connection.
    public final class Transaction: StoreStatements {
        public var dialect: SQLDialect { .postgres }
        let connection: PostgresConnection
        let logger: Logger
        /// Statements' numbered forms, by their text.
        private var numbered: [String: String] = [:]

        let limit: TimeAmount
        /// A statement went unanswered and the connection was closed: later ones fail at once.
        private var expired = false

        init(connection: PostgresConnection, logger: Logger, limit: TimeAmount) {
            self.connection = connection
            self.logger = logger
            self.limit = limit
        }

        /// `body` between `begin` and `COMMIT`, rolled back when it throws; `broken` is set when the
        /// connection can no longer be trusted (`BEGIN` or `ROLLBACK` failed).
        func within<T>(_ begin: String, broken: inout Bool, _ body: (any StoreStatements) throws -> T) throws -> T {
            do { try execute(begin) } catch {
                broken = true
                throw error
            }
            do {
                let value = try body(self)
                try execute("COMMIT")
                return value
            } catch {
                do { try execute("ROLLBACK") } catch { broken = true }
                throw error
            }
        }

        /// Runs `sql` (`?` placeholders) with `arguments`; returns the rows it changed.
        @discardableResult
        public func execute(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> Int {
            try run(sql, arguments).metadata.rows ?? 0
        }

        /// The rows `sql` returns.
        public func rows(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> [SQLRow] {
            try run(sql, arguments).rows.map { row in
                SQLRow(row.makeRandomAccess().map(Self.value))
            }
        }

        /// Runs an `INSERT` with `RETURNING id` appended; returns the id.
        public func insert(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> Int64 {
            guard let id = try rows(sql + " RETURNING id", arguments).first?[0].int64 else {
                throw PostgresError(message: "the insert returned no id: \(sql.prefix(120))", sqlState: nil)
            }
            return id
        }

        private func run(_ sql: String, _ arguments: [any SQLValueConvertible]) throws -> PostgresQueryResult {
            let text: String
            if let n = numbered[sql] { text = n } else {
                text = SQLText.numberedPlaceholders(sql)
                numbered[sql] = text
            }
            var binds = PostgresBindings(capacity: arguments.count)
            for a in arguments {
                switch a.sqlValue {
                case .null: binds.appendNull()
                case .integer(let v): binds.append(v)
                case .real(let v): binds.append(v)
                case .text(let v): binds.append(v)
                case .blob(let v): binds.append(ByteBuffer(bytes: v))
                }
            }
            do {
                // A statement not answered within the limit closes its connection, which fails it: a server
                // that stopped answering (a dropped database, a lost network) ends in an error, not in a
                // thread waiting for good.
                // The answer or the limit, whichever comes first (both on the connection's event loop).
                guard !expired else { throw PostgresError(message: "the connection was closed: an earlier statement went unanswered for \(limit)", sqlState: nil) }
                let connection = self.connection
                let answer = connection.eventLoop.makePromise(of: PostgresQueryResult.self)
                let settled = EventLoopFlag()
                let limit = self.limit
                let timer = connection.eventLoop.scheduleTask(in: limit) {
                    guard settled.set() else { return }
                    answer.fail(PostgresError(message: "no answer from PostgreSQL within \(limit); the connection was closed", sqlState: nil))
                    PostgresDatabase.close(connection)
                }
                connection.query(PostgresQuery(unsafeSQL: text, binds: binds), logger: logger).whenComplete { result in
                    guard settled.set() else { return }
                    timer.cancel()
                    answer.completeWith(result)
                }
                do { return try answer.futureResult.wait() } catch {
                    if connection.isClosed { expired = true }
                    throw error
                }
            } catch {
                throw PostgresError(message: PostgresDatabase.message(error), sqlState: (error as? PSQLError)?.serverInfo?[.sqlState])
            }
        }

        /// A cell as one of the shared kinds: integers of every width, reals, text, bytea; NULL.
        static func value(_ cell: PostgresCell) -> SQLValue {
            guard cell.bytes != nil else { return .null }
            switch cell.dataType {
            case .int2, .int4, .int8, .oid: return (try? cell.decode(Int64.self)).map(SQLValue.integer) ?? .null
            case .float4, .float8: return (try? cell.decode(Double.self)).map(SQLValue.real) ?? .null
            case .bool: return (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null
            case .bytea: return (try? cell.decode(ByteBuffer.self)).map { .blob(Array($0.readableBytesView)) } ?? .null
            case .numeric: return (try? cell.decode(Decimal.self)).map { .real(NSDecimalNumber(decimal: $0).doubleValue) } ?? .null
            default: return (try? cell.decode(String.self)).map(SQLValue.text) ?? .null
            }
        }
    }

    /// Runs `body` in a transaction that commits when it returns and rolls back when it throws.
    @discardableResult
    public func write<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
        try transaction(begin: "BEGIN", body)
    }

    /// Runs `body` in a read-only transaction that sees one snapshot of the database.
    public func read<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
        try transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// A connection of the caller's own (a hub's session: its locks and fenced writes).
    public func writerSession() throws -> (any WriterSession)? {
        Session(connection: try connect(), logger: logger, loop: loop, limit: statementLimit)
    }

    /// One connection, its transactions one at a time; its advisory locks last as long as it does.
    final class Session: WriterSession, @unchecked Sendable { // `connection` used under `lock` only
        let connection: PostgresConnection
        let logger: Logger
        /// Kept so the event loop outlives the session even when the database object goes first.
        let loop: EventLoopOwner
        private let lock = NSLock()
        var dialect: SQLDialect { .postgres }

        let limit: TimeAmount

        init(connection: PostgresConnection, logger: Logger, loop: EventLoopOwner, limit: TimeAmount) {
            self.limit = limit
            self.connection = connection
            self.logger = logger
            self.loop = loop
        }

        /// Closed before the session is gone (off the event loop), so its locks are free when it is: the next
        /// writer under the same name, in this process or another, can take them at once.
        deinit { close() }

        func close() {
            lock.lock()
            defer { lock.unlock() }
            guard !connection.isClosed else { return }
            if connection.eventLoop.inEventLoop { PostgresDatabase.close(connection) } else { try? connection.close().wait() }
        }

        private func locked<T>(_ body: (Transaction) throws -> T) throws -> T {
            lock.lock()
            defer { lock.unlock() }
            guard !connection.isClosed else { throw PostgresError(message: "the hub's lock session to PostgreSQL is closed: its locks are gone", sqlState: nil) }
            return try body(Transaction(connection: connection, logger: logger, limit: limit))
        }

        func read<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
            try transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
        }

        func write<T>(_ body: (any StoreStatements) throws -> T) throws -> T {
            try transaction("BEGIN", body)
        }

        private func transaction<T>(_ begin: String, _ body: (any StoreStatements) throws -> T) throws -> T {
            try locked { tx in
                var broken = false
                return try tx.within(begin, broken: &broken, body)
            }
        }

        func executeAlone(_ sql: String, _ arguments: [any SQLValueConvertible]) throws {
            try locked { try $0.execute(sql, arguments) }
        }

        func tryLock(_ key: Int64) throws -> Bool {
            try locked { try $0.rows("SELECT pg_try_advisory_lock(?)", [key]).first?[0].int64 == 1 }
        }

        func unlock(_ key: Int64) throws {
            try locked { _ = try $0.rows("SELECT pg_advisory_unlock(?)", [key]) }
        }
    }

    /// Runs one statement outside a transaction block, so it commits alone.
    public func executeAlone(_ sql: String, _ arguments: [any SQLValueConvertible]) throws {
        try withConnection { tx, healthy in
            do { try tx.execute(sql, arguments) } catch {
                if tx.connection.isClosed { healthy = false }
                throw error
            }
        }
    }

    private func transaction<T>(begin: String, _ body: (any StoreStatements) throws -> T) throws -> T {
        try withConnection { tx, healthy in
            var broken = false
            defer { if broken { healthy = false } }
            return try tx.within(begin, broken: &broken, body)
        }
    }

    /// Runs `body` on an idle connection (a new one when none is idle), kept for the next caller unless
    /// `body` marks it unhealthy or it closed.
    private func withConnection<T>(_ body: (Transaction, inout Bool) throws -> T) throws -> T {
        let connection = try idle.withLock { $0.popLast() } ?? connect()
        var healthy = true
        defer {
            if healthy && !connection.isClosed {
                if !idle.withLock({ list -> Bool in
                    guard list.count < Self.keep else { return false }
                    list.append(connection)
                    return true
                }) { Self.close(connection) }
            } else {
                Self.close(connection)
            }
        }
        return try body(Transaction(connection: connection, logger: logger, limit: statementLimit), &healthy)
    }

    /// Closes a connection without waiting.
    static func close(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in _ = connection } // alive until closed (its deinit asserts that it was)
    }

    /// What an error of postgres-nio says, with the server's message when there is one (its own
    /// description hides it).
    static func message(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let info = e.serverInfo, let m = info[.message] {
            return [m, info[.detail], info[.hint].map { "hint: \($0)" }].compactMap { $0 }.joined(separator: "; ")
        }
        return "\(e.code)"
    }
}

/// A flag set once, read and set on one event loop only (so without a lock).
final class EventLoopFlag: @unchecked Sendable {
    private var isSet = false
    /// Sets it; false when it was set already.
    func set() -> Bool {
        defer { isSet = true }
        return !isSet
    }
}

/// The event loop of a database's connections, shut down when the last of its users (the database, its
/// sessions) goes.
final class EventLoopOwner: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    deinit { try? group.syncShutdownGracefully() }
}

/// A statement PostgreSQL refused, with its message and SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var sqlState: String?
    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}
