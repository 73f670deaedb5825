import Foundation
import GRDB
import Synchronization
import TwinCore

/// The embedded store of one host twin: one directory holding `twin.db`, a SQLite database in WAL mode
/// with the series index, sealed chunks, rollup tiers, state versions and events, and `wal/`, the log of
/// the head (samples not sealed into chunks yet). See docs/format/store.md.
///
/// Many readers (CLI commands, the server) may open it while one ``TwinWriter`` (the `run` process)
/// writes. Reads see committed ticks only.
///
/// ```swift
/// let store = try TwinStore.open(dataDir: "/var/lib/hosttwin")
/// let procs = try store.state(at: TwinTime.nowMillis(), kinds: [.processes])
/// ```
public final class TwinStore: Sendable {
    public let dataDir: String
    let pool: DatabasePool
    /// The store's tables through the interface both engines implement (docs/ARCHITECTURE.md, "PostgreSQL
    /// for hubs"); code not moved to it yet uses `pool`.
    let database: any StoreDatabase
    /// Whether this store was opened read-only (`serve`, the CLI's readers).
    public var isReadOnly: Bool { pool.configuration.readonly }
    /// Opens sealed attributes on reads (``use(cipher:)``).
    let cipherBox = Mutex<(any AttributeCipher)?>(nil)
    /// Series read so far, by id order (series are never deleted, so only new ones need reading).
    let catalog = Mutex<[SeriesInfo]>([])
    /// The retired detectors' set as last read or written, by its fingerprint (``RetiredDetectors/Mark``).
    let retiredKept = Mutex<(fingerprint: UInt64, series: Set<Int64>)?>(nil)
    /// The catalog's metric names, each stored once (``seriesCatalog()``).
    let metricNames = Mutex<[String: String]>([:])
    /// Decoded chunks recently read (256 Ki samples, 4 MiB at most; empty until something queries).
    let chunkCache = Mutex(ChunkCache(capacity: 262_144))
    /// Parsed directories of chunk rows (keyed like ``chunkCache`` without a series): a dashboard reads the
    /// same rows' directories query after query. Emptied when it reaches 16,384 rows.
    let directoryCache = Mutex<[ChunkCache.Key: GroupBlock.Directory]>([:])
    /// Inflated chunk rows for reads of their other members (16 MiB: about a week of 500 series at 15 s).
    let rowDataCache = Mutex(RowDataCache(capacityBytes: 16 << 20))
    /// Where the head log lives: files in `dataDir`, or a table beside the others (PostgreSQL).
    let headLog: HeadLogPlace
    /// The PostgreSQL database holding this store's tables (nil: the embedded store), for what else a hub
    /// keeps there (its audit log).
    public var sharedDatabase: (any StoreDatabase)? { database.dialect == .postgres ? database : nil }
    /// This process's hub name among those sharing the database (nil: the embedded store).
    public var hubName: String? {
        if case .table(let hub) = headLog { return hub }
        return nil
    }
    /// What this reader has decoded of the unsealed head log: of the series asked for since the last seal.
    let logTails = Mutex(LogTails(keepsAll: false))
    /// The same for passes over every series (``aggregate(ids:from:to:step:cached:)`` without `cached`),
    /// let go when a pass ends (``releaseBackgroundReads()``).
    let backgroundLogTails = Mutex(LogTails(keepsAll: true))
    /// The log segments as the query path lists them (``LogSegment/Listing``).
    let logListing: LogSegment.Listing
    /// The time partitions this process created or found (``TimePartitions``; PostgreSQL).
    let partitionsMade = Mutex<Set<String>>([])
    /// The writer's last few minutes of samples, folded into minutes (``RecentMinutes``).
    let recentMinutes = RecentMinutes()
    /// A hub's live-lane samples, ahead of what its in-order stream has applied (read after stored ones).
    public let preview = LivePreview()
    /// Read-only connections for queries' sample and catalog reads (``QueryReaders``).
    let queryReaders: QueryReaders

    /// Lets SQLite's WAL grow to `pages` pages before it is checkpointed into the database, and cuts it
    /// back to that size after. The default (1,024 pages, a backstop: the sealer checkpoints before each job
    /// and when idle) suits `run`; a hub commits hundreds of batches in one transaction, and a checkpoint after each (an
    /// fdatasync of the WAL and of the database, a truncate) was a quarter of its CPU time.
    public func checkpointEvery(pages: Int) throws {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(max(pages, 1))")
            try db.execute(sql: "PRAGMA journal_size_limit = \(max(pages, 1) * 4096)")
        }
    }

    /// The connection ``checkpointAside()`` copies the WAL through, opened at its first use.
    private let checkpointer = Mutex<DatabaseQueue?>(nil)

    /// Copies SQLite's WAL into the database through a connection of its own, in PASSIVE mode: it takes no
    /// lock the writer needs and waits for nobody, so its fsyncs (the WAL's, then the database's) happen on
    /// the caller's thread — the sealer, before each job's writes — and never inside a tick's commit, where
    /// a busy disk can hold the collection thread for seconds. Once all of the WAL is copied, the next
    /// commit starts it over (fsyncing its new header: the sealer's own write, as a rule) and cuts the file
    /// back to `journal_size_limit`. Failing is harmless: the next call copies what is left, and the
    /// writer's own checkpoint (at 1,024 pages) is the backstop. With `ifWALExceeds`, only when the WAL
    /// file is larger. Returns whether it copied the whole WAL; nothing for PostgreSQL or a read-only store.
    @discardableResult
    func checkpointAside(ifWALExceeds bytes: Int = 0) -> Bool {
        guard database.dialect == .sqlite, !isReadOnly else { return false }
        if bytes > 0 {
            var st = stat()
            guard stat(Self.databasePath(dataDir) + "-wal", &st) == 0, Int(st.st_size) > bytes else { return false }
        }
        return checkpointer.withLock { queue in
            if queue == nil {
                var config = Configuration()
                config.busyMode = .timeout(1)
                queue = try? DatabaseQueue(path: Self.databasePath(dataDir), configuration: config)
            }
            guard let done = try? queue?.writeWithoutTransaction({ db in try db.checkpoint(.passive) }) else { return false }
            return done.walFrameCount > 0 && done.checkpointedFrameCount == done.walFrameCount
        }
    }

    /// Writes one row (the time, in `meta`) so that a WAL copied whole by ``checkpointAside(ifWALExceeds:)``
    /// starts over now, on the caller's thread, with the fsync of its new header, rather than in the next
    /// tick's commit.
    func startWALOver() {
        try? database.write { db in try Self.setMeta(db, "wal_started_over", String(TwinTime.nowMillis())) }
    }

    /// Folds SQLite's WAL into the database and lets go of cached pages (at a stop); failing that is
    /// harmless. Nothing for PostgreSQL.
    func checkpoint() {
        guard database.dialect == .sqlite else { return }
        pool.writeWithoutTransaction { db in _ = try? db.checkpoint(.truncate) }
        pool.releaseMemory()
    }

    /// The database file inside a data directory.
    public static func databasePath(_ dataDir: String) -> String { dataDir + "/twin.db" }

    /// Opens (and, unless `readOnly`, creates and migrates) the store in `dataDir`.
    public static func open(dataDir: String, readOnly: Bool = false) throws -> TwinStore {
        let fm = FileManager.default
        let dbPath = databasePath(dataDir)
        if readOnly {
            guard fm.fileExists(atPath: dbPath) else {
                throw TwinError.unavailable("no HostTwin data in \(dataDir) (missing \(dbPath)); start `hosttwin run --data-dir \(dataDir)` first or pass the right --data-dir")
            }
        } else {
            try createPrivate(dataDir: dataDir)
        }
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // WAL + NORMAL: a commit survives a crash of the process (kill -9); only an OS crash or power
            // loss may lose the last ticks, and never corrupts. See docs/ARCHITECTURE.md.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // A small page cache: the writer touches the head of a few tables each tick, and readers
            // are short-lived CLI processes.
            try db.execute(sql: "PRAGMA cache_size = -1024")
            // Takes effect only on a new, empty database: pages freed by retention and compaction can
            // then be handed back to the file system (`PRAGMA incremental_vacuum`).
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                // Keep the SQLite WAL small: the sealer copies it into the database before each job and
                // when idle, off the writer's thread (`checkpointAside`); a writer checkpoints on its own only past 1,024
                // pages (4 MiB), and the file is cut back to 128 KiB whenever the WAL starts over.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 1024")
                try db.execute(sql: "PRAGMA journal_size_limit = 131072")
            }
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: dbPath, configuration: config)
        } catch {
            throw TwinError.corrupt(what: dbPath, detail: "cannot open as a SQLite database: \(error)")
        }
        let migrator = Schema.migrator()
        if readOnly {
            let applied = try pool.read { try migrator.hasCompletedMigrations($0) }
            guard applied else { throw TwinError.unavailable("\(dbPath) was written by a different HostTwin version; run `hosttwin run` (or, for a hub, `hosttwin serve`) once to upgrade it") }
        } else {
            try migrator.migrate(pool)
        }
        return TwinStore(dataDir: dataDir, pool: pool, readers: QueryReaders(path: dbPath, configuration: config))
    }

    /// Creates the data directory (0700) and the database file (0600) when missing, and takes group and
    /// other permissions off an existing directory: the store holds every process, port and user of
    /// the host. SQLite gives its -wal and -shm files the database file's mode.
    static func createPrivate(dataDir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw TwinError.unavailable("cannot create data directory \(dataDir): \(error.localizedDescription)")
        }
        for dir in [dataDir, dataDir + "/wal"] {
            var st = stat()
            if lstat(dir, &st) == 0, st.st_uid == geteuid(), st.st_mode & 0o077 != 0 { _ = chmod(dir, st.st_mode & 0o700) }
        }
        let db = databasePath(dataDir)
        let fd = Foundation.open(db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 { close(fd) } else if errno != EEXIST {
            throw TwinError.unavailable("cannot create \(db): \(String(cString: strerror(errno)))")
        }
    }

    /// Opens the store in `dataDir` with its tables in `database` (PostgreSQL, `--store URL`) instead of
    /// `dataDir`'s SQLite file, the head log included (``HeadLogPlace``); `dataDir` keeps the writer's lock and the keys. A writer
    /// applies the PostgreSQL schema's missing steps; a reader needs them applied. Nil: the embedded store.
    /// `hub` names this process's rows of the shared head log and its lock when several hubs share the
    /// database (`serve --hub-name`).
    public static func open(dataDir: String, readOnly: Bool = false, tablesIn database: (any StoreDatabase)?, hub: String = "main") throws -> TwinStore {
        guard let database else { return try open(dataDir: dataDir, readOnly: readOnly) }
        if readOnly {
            guard try PostgresSchema.isCurrent(database) else {
                throw TwinError.unavailable("the database has no HostTwin tables of this version yet; start `hosttwin serve --store URL` once to create or upgrade them")
            }
        } else if database.dialect == .postgres {
            try PostgresSchema.migrate(database)
        }
        // Not read-only locally: a reader of a store in PostgreSQL may be the first to use `dataDir`.
        let local = try open(dataDir: dataDir)
        return TwinStore(dataDir: dataDir, pool: local.pool, readers: local.queryReaders, database: database, hub: hub)
    }

    init(dataDir: String, pool: DatabasePool, readers: QueryReaders, database: (any StoreDatabase)? = nil, hub: String = "main") {
        self.dataDir = dataDir
        self.pool = pool
        self.database = database ?? SQLiteStoreDatabase(pool: pool, readers: readers)
        self.queryReaders = readers
        self.logListing = LogSegment.Listing(dataDir: dataDir)
        headLog = self.database.dialect == .postgres ? .table(hub: hub) : .files
    }

    /// Runs SQLite's integrity check; returns the problems found (empty when sound).
    public func integrityCheck() throws -> [String] {
        try pool.read { db in
            let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            return rows == ["ok"] ? [] : rows
        }
    }
}

extension TwinStore {
    /// The store's own positions and marks (`meta`: the sealed log segment, the tiers' horizons, the sync
    /// epoch and holds).
    static func meta(_ db: any StoreStatements, _ key: String) throws -> String? {
        try db.value("SELECT value FROM meta WHERE key = ?", [key])?.string
    }

    static func setMeta(_ db: any StoreStatements, _ key: String, _ value: String) throws {
        try db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])
    }

    static func deleteMeta(_ db: any StoreStatements, _ key: String) throws {
        try db.execute("DELETE FROM meta WHERE key = ?", [key])
    }
}

/// JSON for attribute maps, with sorted keys so equal maps store equal text. Long JSON (command lines)
/// is stored deflated (`u32 JSON length` then zlib data), short JSON as it is. In SQLite the column's type
/// says which (a BLOB is deflated, TEXT is not); PostgreSQL's column is `bytea`, whose first byte says
/// (``Tag``).
enum AttributeJSON {
    /// JSON at least this long is stored deflated when that saves space.
    static let deflateFrom = 200

    /// The first byte of a PostgreSQL `attributes` value.
    enum Tag: UInt8 { case json = 0, deflated = 1 }

    static func encode(_ a: [String: AttributeValue], for dialect: SQLDialect) throws -> SQLValue {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = [UInt8](try e.encode(a))
        var deflated: [UInt8]?
        if json.count >= deflateFrom, let z = Zlib.deflate(json, level: 9), z.count + 4 < json.count {
            var w = ByteWriter(capacity: z.count + 4)
            w.u32(UInt32(json.count))
            w.append(z)
            deflated = w.bytes
        }
        switch dialect {
        case .sqlite: return deflated.map(SQLValue.blob) ?? .text(String(decoding: json, as: UTF8.self))
        case .postgres: return .blob(deflated.map { [Tag.deflated.rawValue] + $0 } ?? [Tag.json.rawValue] + json)
        }
    }

    static func decode(_ v: SQLValue, _ dialect: SQLDialect, where what: @autoclosure () -> String) throws -> [String: AttributeValue] {
        switch v {
        case .text(var s):
            if let flat = s.withUTF8({ FlatJSON.parse(UnsafeRawBufferPointer($0)) }) { return flat }
            return try parse(Data(s.utf8), where: what())
        case .blob(let b):
            var body = b[...]
            if dialect == .postgres {
                guard let tag = b.first.flatMap(Tag.init) else { throw TwinError.corrupt(what: what(), detail: "attributes begin with no known tag") }
                body = b.dropFirst()
                if tag == .json { return try parse(Data(body), where: what()) }
            }
            do {
                let json = try body.withUnsafeBytes { raw in
                    var r = ByteReader(raw)
                    let n = Int(try r.u32())
                    guard n <= 64 << 20 else { throw ChunkError.corrupt("announced size \(n)") }
                    return Data(try Zlib.inflate(UnsafeRawBufferPointer(rebasing: raw[4...]), rawCount: n))
                }
                return try parse(json, where: what())
            } catch let e as TwinError { throw e } catch { throw TwinError.corrupt(what: what(), detail: "deflated attributes do not inflate: \(error)") }
        default: throw TwinError.corrupt(what: what(), detail: "attributes are neither text nor a blob")
        }
    }

    private static func parse(_ json: Data, where what: @autoclosure () -> String) throws -> [String: AttributeValue] {
        if let flat = json.withUnsafeBytes({ FlatJSON.parse($0) }) { return flat }
        do { return try JSONDecoder().decode([String: AttributeValue].self, from: json) } catch {
            throw TwinError.corrupt(what: what(), detail: "attributes are not valid JSON")
        }
    }

    static func encodeChanges(_ c: [TwinEvent.Change]) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(c), as: UTF8.self)
    }
}
