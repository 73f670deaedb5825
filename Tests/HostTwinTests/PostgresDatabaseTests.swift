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
    static func freshDatabase() throws -> (url: String, drop: @Sendable () -> Void) {
        let admin = try PostgresDatabase(url: url!)
        let name = "hosttwin_t\(UInt32.random(in: 0...UInt32.max))"
        // CREATE DATABASE cannot run in a transaction block: it is its own autocommitted statement here.
        try admin.write { try $0.execute("COMMIT"); try $0.execute("CREATE DATABASE \(name)"); try $0.execute("BEGIN") }
        let fresh = url![..<url!.lastIndex(of: "/")!] + "/" + name
        return (fresh, { _ = try? admin.write { try $0.execute("COMMIT"); try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)"); try $0.execute("BEGIN") } })
    }

    /// A statement left unanswered past the limit fails (its connection is closed) instead of holding its
    /// thread for good, and the next transaction works on a new connection.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func anUnansweredStatementFailsAtTheLimit() throws {
        let pg = try PostgresDatabase(url: Self.url!, statementLimit: .milliseconds(500))
        let started = ContinuousClock.now
        #expect(throws: (any Error).self) { try pg.read { try $0.rows("SELECT pg_sleep(10)") } }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try pg.read { try $0.value("SELECT 7")?.int64 } == 7)
    }

    /// The schema applies once: a second hub opening the database applies nothing. (The storage suites run
    /// on PostgreSQL through ``StoreEngine``.)
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func theSchemaAppliesOnce() throws {
        let (fresh, drop) = try Self.freshDatabase()
        defer { drop() }
        let pg = try PostgresDatabase(url: fresh)
        #expect(try !PostgresSchema.isCurrent(pg))
        #expect(try PostgresSchema.migrate(pg) == PostgresSchema.migrations.map(\.name))
        #expect(try PostgresSchema.migrate(pg).isEmpty && PostgresSchema.isCurrent(pg))
    }

    /// A hub with its tables in PostgreSQL (`serve --store URL`): its agent token is created there, an agent
    /// pushes to it, the hub is killed (-9) and restarted, the agent stops, and every tick of the agent is
    /// applied once (the agent's digest equals the hub's); the hub answers PromQL and the
    /// state from PostgreSQL, a reader (`hosttwin query --store`) gets the same answer, and the data
    /// directory's own SQLite file holds none of it.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func aHubKeepsItsTablesInPostgreSQL() throws {
        let (fresh, drop) = try Self.freshDatabase()
        defer { drop() }
        let dir = try temporaryDirectory("hosttwin-pg-hub")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (hubDir, agentDir) = (dir + "/hub", dir + "/agent")
        let created = try EndToEndTests.cli(["token", "create", "--role", "agent", "--host", "web-1", "--data-dir", hubDir, "--store", fresh])
        #expect(created.status == 0, "\(created.stderr)")
        try (created.stdout.split(separator: "\n").last.map(String.init) ?? "").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        let port = try ServerTests.freePort()
        var hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--store", fresh, "--listen", "127.0.0.1:\(port)"])
        defer { if hub.isRunning { hub.terminate(); hub.waitUntilExit() } }
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(port)", "--token-file", dir + "/agent.token"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(40) { (FleetTests.applied(port)["web-1"] ?? 0) >= 6 }, "the hub never applied 6 ticks")
        // The hub is killed mid-push and comes back: what it acknowledged is in PostgreSQL or in its head log,
        // and the agent resumes where the hub's tables say.
        let before = FleetTests.applied(port)["web-1"] ?? 0
        kill(hub.processIdentifier, SIGKILL)
        hub.waitUntilExit()
        // With the hub dead, a reader elsewhere (another data directory) sees every tick it acknowledged:
        // the unsealed samples are rows of head_log, not files on the hub's machine.
        let pg = try PostgresDatabase(url: fresh)
        let acknowledged = try #require(try pg.read { try $0.value("SELECT applied_through FROM sync_hosts WHERE host = 'web-1'")?.int64 })
        let logRows = try pg.read { try $0.value("SELECT count(*) FROM head_log WHERE hub = 'main'")?.int64 ?? -1 }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: hubDir + "/wal")) ?? []).isEmpty, "head-log files in the hub's directory")
        let ackedTick = try #require(try TwinStore.open(dataDir: agentDir, readOnly: true).ticks(from: UInt64(acknowledged), limit: 1).first)
        let until = String(format: "%.3f", Double(ackedTick.time) / 1000)
        let agentsThen = try EndToEndTests.cli(["digest", "--data-dir", agentDir, "--until", until, "--json"]).stdout
        // Elsewhere, with the hub's keys (its sealed values are part of the digest).
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: hubDir + "/keys", toPath: dir + "/elsewhere/keys")
        let elsewhere = try EndToEndTests.cli(["digest", "--data-dir", dir + "/elsewhere", "--store", fresh, "--host", "web-1", "--until", until, "--json"])
        #expect(agentsThen.contains("digest") && elsewhere.stdout == agentsThen,
                "through tick \(acknowledged) (\(logRows) head_log rows): \(elsewhere.stdout) \(elsewhere.stderr) against the agent's \(agentsThen)")
        hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--store", fresh, "--listen", "127.0.0.1:\(port)"])
        #expect(try EndToEndTests.eventually(40) { (FleetTests.applied(port)["web-1"] ?? 0) >= before + 4 }, "the agent did not resume after the kill")
        agent.interrupt()
        agent.waitUntilExit()
        let agentTicks = try TwinStore.open(dataDir: agentDir, readOnly: true).ticks(from: 1, limit: 1_000_000)
        let lastSeq = try #require(agentTicks.last?.seq)
        #expect(try EndToEndTests.eventually(20) { FleetTests.applied(port)["web-1"] == lastSeq }, "the hub at \(FleetTests.applied(port)), the agent at \(lastSeq)")
        // Every sample and version of the agent's, once: the agent's digest equals the hub's, read from PostgreSQL.
        let at = String(format: "%.3f", Double(agentTicks.last!.time) / 1000)
        let mine = try EndToEndTests.cli(["digest", "--data-dir", agentDir, "--until", at, "--json"]).stdout
        let theirs = try EndToEndTests.cli(["digest", "--data-dir", hubDir, "--store", fresh, "--host", "web-1", "--until", at, "--json"]).stdout
        #expect(mine.contains("digest") && theirs == mine, "the hub's digest \(theirs) differs from the agent's \(mine)")

        let query = "/api/v1/query?query=\(ServerTests.q("count(node_load1)"))&host=web-1"
        let answer = ((ServerTests.get(port, query).1["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any]
        #expect(answer?.last as? String == "1", "\(String(describing: answer))")
        let state = ((ServerTests.get(port, "/api/v1/twin/entities/processes").1["data"] as? [String: Any])?["entities"] as? [[String: Any]]) ?? []
        #expect(state.contains { ($0["attributes"] as? [String: Any])?["host"] as? String == "web-1" }, "no process of web-1 in the hub's state")
        let reader = try EndToEndTests.cli(["query", "count(node_load1)", "--data-dir", hubDir, "--store", fresh, "--json"])
        #expect(reader.status == 0 && reader.stdout.contains("\"1\""), "\(reader.stdout) \(reader.stderr)")

        let held = try #require(try pg.read { try $0.rows("""
            SELECT (SELECT applied_through FROM sync_hosts WHERE host = 'web-1'), (SELECT count(*) FROM versions), (SELECT count(*) FROM tokens)
            """).first })
        #expect(held.values == [.integer(Int64(lastSeq)), held[1], .integer(1)] && (held[1].int64 ?? 0) > 0, "\(held)")
        let local = try TwinStore.open(dataDir: hubDir, readOnly: true)
        #expect(try local.tokens().isEmpty && local.counts()["versions"] == 0 && local.counts()["series"] == 0)
        // The audit log is rows too: the token's creation and the hub's requests, chained; an edit is found.
        #expect(!FileManager.default.fileExists(atPath: hubDir + "/audit/audit.log"), "an audit log file beside PostgreSQL")
        let verified = try EndToEndTests.cli(["audit", "verify", "--data-dir", hubDir, "--store", fresh, "--json"])
        #expect(verified.status == 0 && verified.stdout.contains("\"records\"") && !verified.stdout.contains("problem"), "\(verified.stdout) \(verified.stderr)")
        let shown = try EndToEndTests.cli(["audit", "show", "--data-dir", hubDir, "--store", fresh, "--json"]).stdout
        #expect(shown.contains("token.create") && shown.contains("/api/v1/sync/push"), "\(shown.prefix(500))")
        try pg.write { try $0.execute("UPDATE audit_log SET line = replace(line, 'token.create', 'token.crEate') WHERE seq = 1") }
        let tampered = try EndToEndTests.cli(["audit", "verify", "--data-dir", hubDir, "--store", fresh])
        #expect(tampered.status == 1 && tampered.stdout.contains("record 1 does not match"), "\(tampered.stdout)")
        // Commands of the embedded store refuse --store rather than ignore it.
        for command in [["run", "--ticks", "1"], ["check"], ["agent", "--push", "http://127.0.0.1:1"]] {
            let r = try EndToEndTests.cli(command + ["--data-dir", dir + "/other", "--store", fresh])
            #expect(r.status != 0 && r.stderr.contains("--store: `hosttwin \(command[0])`"), "\(command): \(r.stderr)")
        }
    }

    /// `hosttwin migrate` moves an embedded twin into PostgreSQL: sealed chunks, samples still in the head
    /// log, state history (rows and packed blocks), events and a token all arrive, each table's rows and
    /// digest and the twin digest agree; a writer on the copy continues its ids; a second migration into
    /// the same database, and one while a writer holds the data directory, are refused.
    /// Two hubs share one database; an agent pushes to both. One writes the host (its lock), the other
    /// answers as a standby; a third hub under a running hub's name is refused. The writer is killed (-9):
    /// the other takes the host over, seals the dead hub's head-log rows, and goes on from the stored
    /// cursor; when the agent stops, every tick it committed is in the database once (the digests agree).
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func aSecondHubTakesOverWhenTheFirstDies() throws {
        let (fresh, drop) = try Self.freshDatabase()
        defer { drop() }
        let dir = try temporaryDirectory("hosttwin-pg-hubs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let created = try EndToEndTests.cli(["token", "create", "--role", "agent", "--host", "web-1", "--data-dir", dir + "/a", "--store", fresh])
        #expect(created.status == 0, "\(created.stderr)")
        try (created.stdout.split(separator: "\n").last.map(String.init) ?? "").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        let ports = [try ServerTests.freePort(), try ServerTests.freePort()]
        func startHub(_ i: Int) throws -> Process {
            let name = ["a", "b"][i]
            return try ServerTests.start(["serve", "--data-dir", dir + "/" + name, "--store", fresh, "--hub-name", name, "--listen", "127.0.0.1:\(ports[i])"])
        }
        var hubs = [try startHub(0)]
        defer { for h in hubs where h.isRunning { h.terminate(); h.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(20) { ServerTests.get(ports[0], "/healthz").0 == 200 })
        // Hubs sharing a database share the keys of sealed values.
        try FileManager.default.createDirectory(atPath: dir + "/b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/a/keys", toPath: dir + "/b/keys")
        hubs.append(try startHub(1))
        #expect(try EndToEndTests.eventually(20) { ServerTests.get(ports[1], "/healthz").0 == 200 })
        let same = try EndToEndTests.cli(["serve", "--data-dir", dir + "/c", "--store", fresh, "--hub-name", "a", "--listen", "127.0.0.1:\(try ServerTests.freePort())"])
        #expect(same.status != 0 && same.stderr.contains("a hub named \"a\" is running"), "\(same.stderr)")

        let agent = try ServerTests.start(["agent", "--data-dir", dir + "/agent", "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(ports[0])", "--push", "http://127.0.0.1:\(ports[1])",
                                           "--token-file", dir + "/agent.token"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        let pg = try PostgresDatabase(url: fresh)
        func applied() throws -> Int64 { try pg.read { try $0.value("SELECT applied_through FROM sync_hosts WHERE host = 'web-1'")?.int64 } ?? 0 }
        func logHubs() throws -> [String] { try pg.read { try $0.rows("SELECT DISTINCT hub FROM head_log ORDER BY hub").map { try $0.text(0) } } }
        #expect(try EndToEndTests.eventually(40) { try applied() >= 6 && logHubs().count == 1 }, "no hub applied 6 ticks")
        let writer = try #require(try logHubs().first)
        let w = writer == "a" ? 0 : 1
        // The writer dies with rows in its head log; the other takes the host over.
        let before = try applied()
        kill(hubs[w].processIdentifier, SIGKILL)
        hubs[w].waitUntilExit()
        #expect(try EndToEndTests.eventually(40) { try applied() >= before + 4 }, "the other hub did not take web-1 over (applied through \((try? applied()) ?? -1))")
        #expect(try EndToEndTests.eventually(20) { try !logHubs().contains(writer) }, "the dead hub's head-log rows were not sealed: \((try? logHubs()) ?? [])")
        agent.interrupt()
        agent.waitUntilExit()
        let agentTicks = try TwinStore.open(dataDir: dir + "/agent", readOnly: true).ticks(from: 1, limit: 1_000_000)
        let lastSeq = try #require(agentTicks.last?.seq)
        #expect(try EndToEndTests.eventually(20) { try applied() == Int64(lastSeq) }, "the database at \((try? applied()) ?? -1), the agent at \(lastSeq)")
        let at = String(format: "%.3f", Double(agentTicks.last!.time) / 1000)
        let mine = try EndToEndTests.cli(["digest", "--data-dir", dir + "/agent", "--until", at, "--json"]).stdout
        let theirs = try EndToEndTests.cli(["digest", "--data-dir", dir + "/" + ["b", "a"][w], "--store", fresh, "--host", "web-1", "--until", at, "--json"])
        #expect(mine.contains("digest") && theirs.stdout == mine, "the hubs' digest \(theirs.stdout) \(theirs.stderr) differs from the agent's \(mine)")
    }

    /// Time partitions: a database of the schema before them keeps its rows and ids through the upgrade
    /// (in the default partitions); the sealer creates a day's partition of `chunks` before sealing into
    /// it, and retention drops the partitions that ended before its cutoff, samples after it kept.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func retentionDropsWholeTimePartitions() throws {
        let (fresh, drop) = try Self.freshDatabase()
        let dir = try temporaryDirectory("hosttwin-pg-parts")
        defer { try? FileManager.default.removeItem(atPath: dir); drop() }
        let pg = try PostgresDatabase(url: fresh)
        let old: Int64 = 1_700_000_000_000
        try pg.write { db in
            try db.execute("CREATE TABLE schema_migrations(name TEXT PRIMARY KEY, applied BIGINT NOT NULL)")
            for step in PostgresSchema.migrations.prefix(2) {
                for statement in step.statements { try db.execute(statement) }
                try db.execute("INSERT INTO schema_migrations(name, applied) VALUES (?, 0)", [step.name])
            }
            try db.execute("INSERT INTO events(id, t, type) VALUES (41, ?, 'started')", [old])
        }
        let store = try TwinStore.open(dataDir: dir, tablesIn: pg)
        func partitions(_ table: String) throws -> [String] {
            try pg.read { try $0.rows("SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(?) ORDER BY 1", [table]).map { try $0.text(0) } }
        }
        #expect(try partitions("events") == ["events_default"])
        #expect(try EngineStore.integer(store, "SELECT count(*) FROM events_default WHERE id = 41") == 1)
        #expect(try pg.write { try $0.insert("INSERT INTO events(t, type) VALUES (?, 'x')", [old]) } > 41, "the ids do not continue")

        var policy = StoragePolicy.testing
        policy.rawRetention = 2 * StoragePolicy.day
        let w = TwinWriter(store: store, policy: policy)
        defer { try? w.finish(now: 0) }
        let day = StoragePolicy.day
        let d0 = (old / day + 10) * day
        try w.begin(now: d0 - 1, interval: 1000)
        func ticks(from t0: Int64) throws {
            for i in 0..<5 {
                var o = Observation(timestamp: t0 + Int64(i) * 1000)
                o.add("x", .empty, Double(i))
                try w.commit(o)
            }
            try w.flush()
        }
        try ticks(from: d0)
        #expect(try partitions("chunks").contains("chunks_p\(d0 / day)"))
        #expect(try EngineStore.integer(store, "SELECT count(*) FROM chunks_p\(d0 / day)") ?? 0 > 0, "the day's chunks are not in its partition")
        try ticks(from: d0 + 3 * day)
        let left = try partitions("chunks")
        #expect(!left.contains("chunks_p\(d0 / day)") && left.contains("chunks_p\(d0 / day + 3)"), "\(left)")
        #expect(try store.samples(SeriesKey("x"), from: .min, to: .max)?.map(\.0) == (0..<5).map { d0 + 3 * day + Int64($0) * 1000 })
    }

    /// The head log is a table in PostgreSQL: a reader with a data directory of its own sees every
    /// committed tick, sealed or not; a read whose snapshot is older than a seal another read already
    /// applied starts over rather than miss a head window; a writer that ended without a stop leaves its
    /// rows, which the next writer replays and seals once; a damaged row stops that start with an error
    /// naming it, and a reader reads what precedes it.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func theHeadLogIsATable() throws {
        let (fresh, drop) = try Self.freshDatabase()
        let dir = try temporaryDirectory("hosttwin-pg-log")
        defer { try? FileManager.default.removeItem(atPath: dir); drop() }
        func open(_ name: String) throws -> TwinStore { try TwinStore.open(dataDir: dir + "/" + name, tablesIn: try PostgresDatabase(url: fresh)) }
        func rows() throws -> Int64 { try EngineStore.integer(try open("count"), "SELECT count(*) FROM head_log") ?? -1 }
        let t0: Int64 = 1_800_000_000_000
        var written: [Double] = []
        func commit(_ w: TwinWriter, _ i: Int) throws {
            var o = Observation(timestamp: t0 + Int64(i) * 1000)
            o.add("x_total", .empty, Double(i * 7), .counter)
            try w.commit(o)
            written.append(Double(i * 7))
        }
        let reader = try open("reader")
        func seen() throws -> [Double] { try reader.samples(SeriesKey("x_total"), from: .min, to: .max)?.map(\.1) ?? [] }
        do {
            let w = TwinWriter(store: try open("hub"), policy: .testing)
            try w.begin(now: t0 - 1, interval: 1000)
            for i in 0..<30 { try commit(w, i) }
            #expect(try seen() == written)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: dir + "/hub/wal")) ?? []).isEmpty)

            // A snapshot taken before a seal, read after another read applied the seal, starts over.
            try reader.database.read { db in
                _ = try db.value("SELECT 1")
                try w.flush()
                #expect(try seen() == written)
                #expect(try reader.logTails.withLock { try $0.advance(table: db) } == false, "a stale snapshot was read as current")
            }
            #expect(try rows() == 0)
            for i in 30..<38 { try commit(w, i) } // one head window (20 s) from t0 + 20 s
            // No finish: the writer ends as a killed hub does, its last rows unsealed.
        }
        #expect(try rows() == 8)
        #expect(try seen() == written)
        do {
            let w = TwinWriter(store: try open("hub"), policy: .testing)
            try w.open()
            #expect(try rows() == 0)
            #expect(try seen() == written, "the replayed rows were sealed other than once")
            for i in 38..<40 { try commit(w, i) }
        }
        let pg = try PostgresDatabase(url: fresh)
        try pg.write { try $0.execute("UPDATE head_log SET data = '\\x07'::bytea WHERE record = 1") }
        #expect(try seen() == Array(written.prefix(39)), "a reader reads what precedes the damaged row")
        #expect {
            try TwinWriter(store: try open("hub"), policy: .testing).open()
        } throws: { "\($0)".contains("head_log") && "\($0)".contains("record 1") }
    }

    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func migrateMovesAnEmbeddedTwin() throws {
        let (fresh, drop) = try Self.freshDatabase()
        defer { drop() }
        let dir = try temporaryDirectory("hosttwin-migrate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0: Int64 = 1_800_000_000_000
        var written: [Double] = []
        do {
            let store = try TwinStore.open(dataDir: dir)
            try store.insertToken(TokenRecord(id: "t1", role: "reader", host: nil, name: "ops",
                                              secretHash: [1, 2, 3], created: t0, expires: nil, revoked: nil))
            let w = TwinWriter(store: store, policy: .testing)
            try w.begin(now: t0 - 1, interval: 1000)
            for i in 0..<70 {
                var o = Observation(timestamp: t0 + Int64(i) * 1000)
                o.add("x_total", .empty, Double(i * 3), .counter)
                o.set(.processes, [Entity(kind: .processes, key: "\(i / 10)@1", attributes: ["name": .string("p\(i / 10)"), "cmd": .string(String(repeating: "arg ", count: 80))])])
                try w.commit(o)
                written.append(Double(i * 3))
            }
            try store.packVersions(before: t0 + 30_000)
            // No finish: the last head window stays in the log, as after a crash.
            #expect(try store.counts()["log_samples"] ?? 0 > 0)
        }
        let holder = TwinWriter(store: try TwinStore.open(dataDir: dir))
        try holder.open()
        let locked = try EndToEndTests.cli(["migrate", "--from", dir, "--to", fresh])
        #expect(locked.status != 0 && locked.stderr.contains("another HostTwin writer"), "\(locked.stderr)")
        try holder.finish(now: t0 + 80_000)
        // finish sealed the log; a fresh crash-like tail again for the migration to seal:
        do {
            let w = TwinWriter(store: try TwinStore.open(dataDir: dir), policy: .testing)
            try w.begin(now: t0 + 90_000, interval: 1000)
            for i in 70..<75 {
                var o = Observation(timestamp: t0 + 30_000 + Int64(i) * 1000)
                o.add("x_total", .empty, Double(i * 3), .counter)
                try w.commit(o)
                written.append(Double(i * 3))
            }
        }

        let migrated = try EndToEndTests.cli(["migrate", "--from", dir, "--to", fresh, "--json"])
        #expect(migrated.status == 0, "\(migrated.stdout) \(migrated.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(migrated.stdout.utf8)) as? [String: Any])
        #expect(report["ok"] as? Bool == true)
        let tables = (report["tables"] as? [[String: Any]]) ?? []
        func rows(_ name: String) -> Int { tables.first { $0["table"] as? String == name }?["rows"] as? Int ?? -1 }
        #expect(rows("chunks") > 0 && rows("version_blocks") > 0 && rows("versions") > 0 && rows("tokens") == 1 && rows("events") == 3, "\(tables)")
        #expect(tables.allSatisfy { $0["digest"] as? String == $0["copied_digest"] as? String })

        let pg = try PostgresDatabase(url: fresh)
        let copy = try TwinStore.open(dataDir: dir, tablesIn: pg)
        #expect(try copy.samples(SeriesKey("x_total"), from: .min, to: .max)?.map(\.1) == written)
        // The verification sees one changed value.
        try pg.write { try $0.execute("UPDATE events SET detail = 'changed' WHERE id = (SELECT min(id) FROM events)") }
        let differing = try StoreCopy.verify(source: try TwinStore.open(dataDir: dir, readOnly: true), destination: copy).filter { !$0.matches }
        #expect(differing.map(\.table) == ["events"] && differing.first?.rows == differing.first?.copiedRows)
        #expect(try copy.state(at: t0 + 15_000).map(\.key) == ["1@1"])
        #expect(try copy.tokens().map(\.name) == ["ops"])
        // A writer on the copy gets new ids after the copied ones.
        let w = TwinWriter(store: copy, policy: .testing)
        try w.begin(now: t0 + 200_000, interval: 1000)
        var o = Observation(timestamp: t0 + 201_000)
        o.add("y_new", .empty, 1)
        #expect(try w.commit(o).newSeries == 1)
        try w.finish(now: t0 + 202_000)
        #expect(try copy.series().count == 2)

        let again = try EndToEndTests.cli(["migrate", "--from", dir, "--to", fresh])
        #expect(again.status != 0 && again.stderr.contains("already holds HostTwin data"), "\(again.stderr)")
        let nowhere = try EndToEndTests.cli(["migrate", "--from", dir + "/none", "--to", fresh])
        #expect(nowhere.status != 0 && nowhere.stderr.contains("no HostTwin store"), "\(nowhere.stderr)")
    }

    /// Series resolved in batches (PostgreSQL's path: a few statements for many keys) get the ids one-by-one
    /// resolution gives: a known series keeps its id whatever type it is asked with, a key twice in a batch
    /// gets one id, new metrics and label sets are created once, and asking again changes nothing.
    @Test(.enabled(if: url != nil, Comment(rawValue: skip)))
    func seriesResolvedInBatchesMatchOneByOne() throws {
        let place = try EngineStore(.postgres)
        defer { place.remove() }
        let w = TwinWriter(store: try place.open())
        try w.open()
        let known = try w.seriesID(for: SeriesKey("cpu", Labels(["host": "a"])), type: .counter)
        let keys: [(SeriesKey, MetricType)] = [
            (SeriesKey("cpu", Labels(["host": "a"])), .gauge), // known, asked with another type
            (SeriesKey("cpu", Labels(["host": "b"])), .counter),
            (SeriesKey("mem", Labels(["host": "a"])), .gauge), // a known label set, a new metric
            (SeriesKey("cpu", Labels(["host": "b"])), .counter), // twice in the batch
            (SeriesKey("up"), .gauge),
        ]
        let ids = try w.seriesIDs(for: keys)
        #expect(ids[0] == known && ids[1] == ids[3] && Set(ids).count == 4, "\(ids)")
        #expect(try w.seriesIDs(for: keys) == ids)
        let store = try place.open()
        let counts = try #require(try store.database.read { try $0.rows("SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM metrics), (SELECT count(*) FROM label_sets)").first })
        #expect(counts.values == [.integer(4), .integer(3), .integer(3)], "series; metrics cpu/counter, mem/gauge, up/gauge; label sets a, b, empty: \(counts)")
        let oneByOne = try store.database.write { db in try keys.map { try WriterSeriesIndex.resolve(db, $0.0, type: $0.1) } }
        #expect(oneByOne.map(\.0) == ids && oneByOne.allSatisfy { !$0.1 })
        try w.finish(now: 1)
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
