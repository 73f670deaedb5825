import Foundation
import Testing
import TwinCore
import TwinPostgres
@testable import TwinStorage

/// The PostgreSQL connection layer of a hub's store (issue 17), against a real PostgreSQL: `.ci/run` starts a
/// private cluster (scripts/postgres-lib.sh) and names it in HOSTTWIN_TEST_POSTGRES; without it these skip.
@Suite(.serialized) struct PostgresDatabaseTests {
    static let url = ProcessInfo.processInfo.environment["HOSTTWIN_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    static let skip = "needs PostgreSQL: HOSTTWIN_TEST_POSTGRES=postgres://USER@HOST:PORT/DB (scripts/postgres-lib.sh starts one)"

    @Test func placeholdersAreNumberedOutsideLiteralsAndComments() {
        #expect(SQLText.numberedPlaceholders("SELECT ? , ?") == "SELECT $1 , $2")
        #expect(SQLText.numberedPlaceholders("SELECT '?', \"a?\", ? -- why?\n, ?") == "SELECT '?', \"a?\", $1 -- why?\n, $2")
        #expect(SQLText.numberedPlaceholders("INSERT INTO t VALUES ('it''s ?', ?)") == "INSERT INTO t VALUES ('it''s ?', $1)")
    }

    @Test func locationsAreParsedAndPasswordsNeverShown() throws {
        let l = try PostgresDatabase.Location(url: "postgres://hub:s%40cret@db.example:6432/twin")
        #expect(l == (try PostgresDatabase.Location(url: "postgresql://hub:s%40cret@db.example:6432/twin")))
        #expect(l.user == "hub" && l.password == "s@cret" && l.host == "db.example" && l.port == 6432 && l.database == "twin")
        #expect(!l.description.contains("cret"))
        #expect((try PostgresDatabase.Location(url: "postgres://hub@127.0.0.1/twin")).port == 5432)
        for bad in ["mysql://a@b/c", "postgres://a:secret@/c", "postgres://host/c", "postgres://a:secret@host", "postgres://a@host/c/d", "::"] {
            #expect {
                _ = try PostgresDatabase.Location(url: bad)
            } throws: { error in
                "\(error)".contains("--store") && !"\(error)".contains("secret")
            }
        }
    }

    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func valuesRoundTripAndTransactionsHold() throws {
        let db = try PostgresDatabase(url: Self.url!)
        let table = "t_\(UInt32.random(in: 0...UInt32.max))"
        try db.write { tx in
            try tx.execute("CREATE TABLE \(table)(id bigint PRIMARY KEY, r double precision, s text, b bytea, n bigint)")
        }
        defer { _ = try? db.write { try $0.execute("DROP TABLE \(table)") } }
        let blob = (0...255).map(UInt8.init) + [0, 0, 1]
        let id = try db.write { tx in
            try tx.value("INSERT INTO \(table)(id, r, s, b, n) VALUES (?, ?, ?, ?, ?) RETURNING id",
                         [Int64(1) << 40, 0.1 + 0.2, "it's a '?' — ünïcode", blob, Optional<Int64>.none])
        }
        #expect(id == .integer(1 << 40))
        let row = try #require(try db.read { try $0.rows("SELECT id, r, s, b, n, 7::int4, true FROM \(table) WHERE s LIKE ?", ["%?%"]).first })
        #expect(row.values == [.integer(1 << 40), .real(0.1 + 0.2), .text("it's a '?' — ünïcode"), .blob(blob), .null, .integer(7), .integer(1)])

        // A body that throws rolls the transaction back; a refused statement says why, with its SQLSTATE, and
        // the connection goes on.
        struct Stop: Error {}
        #expect(throws: Stop.self) { try db.write { tx in try tx.execute("INSERT INTO \(table)(id) VALUES (2)"); throw Stop() } }
        #expect {
            try db.write { tx in try tx.execute("INSERT INTO \(table)(id) VALUES (?)", [Int64(1) << 40]) }
        } throws: { error in
            (error as? PostgresError)?.sqlState == "23505" && "\(error)".contains("duplicate key")
        }
        #expect {
            try db.read { tx in try tx.execute("INSERT INTO \(table)(id) VALUES (3)") }
        } throws: { error in (error as? PostgresError)?.sqlState == "25006" }
        #expect(try db.read { try $0.value("SELECT count(*) FROM \(table)") } == .integer(1))

        // Transactions from many threads at once, each on a connection of its own.
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            _ = try? db.write { tx in try tx.execute("INSERT INTO \(table)(id, n) VALUES (?, ?)", [Int64(100 + i), Int64(i)]) }
        }
        #expect(try db.read { try $0.value("SELECT sum(n)::bigint, count(*) FROM \(table)") } == .integer(120))
        #expect(try db.read { try $0.value("SELECT sum(n) FROM \(table)") } == .real(120), "numeric comes back as a real")
    }

    /// A database of its own for one test, dropped when the test ends.
    static func freshDatabase() throws -> (url: String, drop: () -> Void) {
        let admin = try PostgresDatabase(url: url!)
        let name = "hosttwin_t\(UInt32.random(in: 0...UInt32.max))"
        // CREATE DATABASE cannot run in a transaction block: it is its own autocommitted statement here.
        try admin.write { try $0.execute("COMMIT"); try $0.execute("CREATE DATABASE \(name)"); try $0.execute("BEGIN") }
        let fresh = url![..<url!.lastIndex(of: "/")!] + "/" + name
        return (fresh, { _ = try? admin.write { try $0.execute("COMMIT"); try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)"); try $0.execute("BEGIN") } })
    }

    /// The schema applies once (a second hub opening the database applies nothing), and what a writer
    /// stores — state history, events, runs, tick runs, sealed chunks — reads back as the embedded store's
    /// does: the exactness test of the state history, with the store's tables in PostgreSQL.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func theStateHistoryIsExactInPostgreSQL() throws {
        let (fresh, drop) = try Self.freshDatabase()
        defer { drop() }
        let pg = try PostgresDatabase(url: fresh)
        #expect(try !PostgresSchema.isCurrent(pg))
        #expect(try PostgresSchema.migrate(pg) == PostgresSchema.migrations.map(\.name))
        #expect(try PostgresSchema.migrate(pg).isEmpty && PostgresSchema.isCurrent(pg))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir, tablesIn: pg)
        try StoreTests.checkStateReconstruction(store, dir: dir)
        let held = try pg.read { try $0.rows("SELECT (SELECT count(*) FROM version_blocks), (SELECT count(*) FROM chunks), (SELECT count(*) FROM tick_runs)").first }
        #expect(held?.values.allSatisfy { ($0.int64 ?? 0) > 0 } == true, "version blocks, chunks and tick runs are in PostgreSQL: \(String(describing: held))")
        #expect(try store.ticks(from: 1).count == 120 && store.epoch() != nil)
    }

    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func aWrongPlaceIsAClearError() throws {
        let l = try PostgresDatabase.Location(url: Self.url!)
        #expect {
            _ = try PostgresDatabase(url: "postgres://\(l.user):hunter2@\(l.host):\(l.port)/no_such_database_here")
        } throws: { error in
            "\(error)".contains("no_such_database_here") && "\(error)".contains("does not exist") && !"\(error)".contains("hunter2")
        }
        #expect {
            _ = try PostgresDatabase(url: "postgres://\(l.user)@127.0.0.1:1/x")
        } throws: { error in "\(error)".contains("cannot connect to postgres://\(l.user)@127.0.0.1:1/x") }
    }
}
