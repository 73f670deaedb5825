import Crypto
import Foundation
import Synchronization
import TwinCore
import TwinStorage

/// An append-only, hash-chained audit log: one JSON line per API request and per admin action, each
/// line carrying the SHA-256 of the previous line's hash and its own content, so an edit, an insertion
/// or a deletion breaks the chain from there on.
///
/// Records cut from the end leave a valid chain, so the log's head is anchored: at least every minute
/// (and on close) the newest sequence number and hash are appended, with an HMAC under a key only the
/// server reads (`anchor.key`), to an anchor file — by default `anchors` beside the log, better on
/// another disk or host (`--audit-anchor FILE`). `verify` checks the chain, every anchor's MAC, that
/// every anchored record is in the log with the anchored hash, and that the log reaches the newest
/// anchor. What can still go unnoticed: records cut from the end that are younger than the newest
/// anchor (under a minute's worth), and anything done by someone who can read the key.
///
/// Several processes may append to one log (`run` and `serve` on one data directory): appends hold an
/// `flock` and re-read the tail when another process wrote since.
///
/// A store whose tables are in PostgreSQL keeps the records there instead (``Table``: rows of `audit_log`,
/// one chain per hub name, the same lines); the anchor key and the anchors stay files.
public final class AuditLog: Sendable {
    /// Records as rows of `audit_log(chain, seq, line)` in `database`, chained per `chain` (a hub's name).
    public struct Table: Sendable {
        public var database: any StoreDatabase
        public var chain: String
        public init(database: any StoreDatabase, chain: String) {
            self.database = database
            self.chain = chain
        }
    }

    /// One record as read back.
    public struct Record: Codable, Sendable, Equatable {
        public var seq: Int64
        public var t: Int64
        /// `request` (an API request) or `admin` (an action that changes who may do what).
        public var kind: String
        public var action: String
        public var role: String?
        public var token: String?
        public var source: String?
        public var status: Int?
        public var detail: String?

        public init(kind: String, action: String, role: String?, token: String?, source: String?, status: Int?, detail: String? = nil) {
            (seq, t) = (0, 0)
            (self.kind, self.action, self.role, self.token, self.source, self.status, self.detail) = (kind, action, role, token, source, status, detail)
        }
    }

    /// What `verify` found: the records read, and the first problem (nil when the log is intact).
    public struct Verdict: Sendable, Encodable {
        public var records: Int
        public var anchors: Int
        public var ok: Bool { problem == nil }
        public var problem: String?
        /// The line (1-based) where the problem is, when it is in the log.
        public var line: Int?
    }

    public let directory: String
    public let anchorPath: String
    /// Where the records are, when not in `directory`'s log file.
    public let table: Table?
    private let logPath: String
    /// The anchoring key's bytes (`SymmetricKey` is not `Sendable`).
    private let keyBytes: [UInt8]
    private struct Head { var fd: Int32; var seq: Int64; var hash: [UInt8]; var size: Int64; var anchoredSeq: Int64; var anchoredAt: Int64 }
    private let head: Mutex<Head>
    /// How often the head is anchored (ms).
    public static let anchorInterval: Int64 = 60_000
    static let genesis = [UInt8](repeating: 0, count: 32)

    /// Opens (creating when needed, 0700/0600) the log in `directory`, anchoring to `anchorPath`.
    public init(directory: String, anchorPath: String? = nil, table: Table? = nil) throws {
        self.directory = directory
        self.anchorPath = anchorPath ?? directory + "/anchors"
        self.table = table
        logPath = directory + "/audit.log"
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw TwinError.unavailable("cannot create the audit directory \(directory): \(error.localizedDescription)")
        }
        keyBytes = try Self.loadKey(directory + "/anchor.key")
        if let table {
            let (seq, hash) = try Self.tail(table)
            head = Mutex(Head(fd: -1, seq: seq, hash: hash, size: 0, anchoredSeq: -1, anchoredAt: 0))
            return
        }
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw TwinError.unavailable("cannot open \(logPath): \(String(cString: strerror(errno)))") }
        let (seq, hash) = try Self.tail(logPath)
        var st = stat()
        fstat(fd, &st)
        head = Mutex(Head(fd: fd, seq: seq, hash: hash, size: Int64(st.st_size), anchoredSeq: -1, anchoredAt: 0))
    }

    deinit {
        head.withLock { h in
            anchor(&h, now: TwinTime.nowMillis(), force: true)
            if h.fd >= 0 { close(h.fd) }
        }
    }

    /// The anchoring key: 32 random bytes in a 0600 file, made on first use.
    static func loadKey(_ path: String) throws -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path), data.count == 32 { return [UInt8](data) }
        let key = SymmetricKey(size: .bits256)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw TwinError.unavailable("cannot create the audit anchor key \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = key.withUnsafeBytes { Array($0) }
        guard write(fd, bytes, bytes.count) == bytes.count else { throw TwinError.unavailable("cannot write \(path)") }
        return bytes
    }

    /// Appends a record (its time and sequence number are set here) and anchors the head when due.
    public func append(_ record: Record, now: Int64 = TwinTime.nowMillis()) {
        if let table { return appendRow(record, table, now: now) }
        head.withLock { h in
            flock(h.fd, LOCK_EX)
            defer { flock(h.fd, LOCK_UN) }
            var st = stat()
            if fstat(h.fd, &st) == 0, Int64(st.st_size) != h.size, let (seq, hash) = try? Self.tail(logPath) {
                (h.seq, h.hash) = (seq, hash) // another process appended since our last write
            }
            var r = record
            r.seq = h.seq + 1
            r.t = now
            let (line, hash) = Self.line(r, prev: h.hash)
            let bytes = Array(line.utf8)
            guard write(h.fd, bytes, bytes.count) == bytes.count else { return }
            (h.seq, h.hash, h.size) = (r.seq, hash, Int64(st.st_size) + Int64(bytes.count))
            anchor(&h, now: now, force: false)
        }
    }

    /// Appends a record as a row; when another process appended to the chain since (the row's key is
    /// taken), chains on its record instead and tries again.
    private func appendRow(_ record: Record, _ table: Table, now: Int64) {
        head.withLock { h in
            for _ in 0..<5 {
                var r = record
                r.seq = h.seq + 1
                r.t = now
                let (line, hash) = Self.line(r, prev: h.hash)
                do {
                    try table.database.executeAlone("INSERT INTO audit_log(chain, seq, line) VALUES (?, ?, ?)", [table.chain, r.seq, String(line.dropLast())])
                    (h.seq, h.hash) = (r.seq, hash)
                    anchor(&h, now: now, force: false)
                    return
                } catch {
                    guard let (seq, hash) = try? Self.tail(table), seq != h.seq else { return } // not a lost race: the database is away
                    (h.seq, h.hash) = (seq, hash)
                }
            }
        }
    }

    /// The sequence number and hash of a table chain's last record (0 and the genesis hash when empty).
    static func tail(_ table: Table) throws -> (Int64, [UInt8]) {
        guard let line = try table.database.read({ db in
            try db.value("SELECT line FROM audit_log WHERE chain = ? ORDER BY seq DESC LIMIT 1", [table.chain])?.string
        }) else { return (0, genesis) }
        guard let parsed = parse(line) else {
            throw TwinError.corrupt(what: "audit_log (chain \(table.chain))", detail: "the last audit record cannot be read; run `hosttwin audit verify`")
        }
        return (parsed.record.seq, parsed.hash)
    }

    /// The records with `t >= since`, oldest first (from the file or the table).
    public func records(since: Int64 = .min) throws -> [Record] {
        guard let table else { return try Self.read(directory: directory, since: since) }
        return try Self.lines(table).compactMap { Self.parse($0)?.record }.filter { $0.t >= since }
    }

    /// Checks the chain and its anchors (the file's or the table's).
    public func verify() throws -> Verdict {
        guard let table else { return try Self.verify(directory: directory, anchorPath: anchorPath) }
        return Self.verify(lines: try Self.lines(table), directory: directory, anchorPath: anchorPath)
    }

    static func lines(_ table: Table) throws -> [String] {
        try table.database.read { db in
            try db.rows("SELECT line FROM audit_log WHERE chain = ? ORDER BY seq", [table.chain]).map { try $0.text(0) }
        }
    }

    /// Anchors the head now (the server also does this every minute and on close).
    public func anchorNow() { head.withLock { anchor(&$0, now: TwinTime.nowMillis(), force: true) } }

    private func anchor(_ h: inout Head, now: Int64, force: Bool) {
        guard h.seq > h.anchoredSeq, force || now - h.anchoredAt >= Self.anchorInterval else { return }
        let text = "{\"seq\":\(h.seq),\"hash\":\"\(h.hash.hex)\",\"t\":\(now)"
        let mac = Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: keyBytes)))
        let line = Array((text + ",\"mac\":\"\(mac.hex)\"}\n").utf8)
        let fd = open(anchorPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        if write(fd, line, line.count) == line.count, fsync(fd) == 0 {
            if h.fd >= 0 { _ = fsync(h.fd) }
            (h.anchoredSeq, h.anchoredAt) = (h.seq, now)
        }
    }

    /// The JSON line of a record chained to `prev`, and its hash: SHA-256 over the previous hash and
    /// the line up to (not including) its `hash` field.
    static func line(_ r: Record, prev: [UInt8]) -> (String, [UInt8]) {
        var j = "{\"seq\":\(r.seq),\"t\":\(r.t),\"kind\":\(quote(r.kind)),\"action\":\(quote(r.action))"
        if let v = r.role { j += ",\"role\":\(quote(v))" }
        if let v = r.token { j += ",\"token\":\(quote(v))" }
        if let v = r.source { j += ",\"source\":\(quote(v))" }
        if let v = r.status { j += ",\"status\":\(v)" }
        if let v = r.detail { j += ",\"detail\":\(quote(v))" }
        let hash = chain(prev, j)
        return (j + ",\"hash\":\"\(hash.hex)\"}\n", hash)
    }

    static func chain(_ prev: [UInt8], _ body: String) -> [UInt8] {
        var h = SHA256()
        h.update(data: prev)
        h.update(data: Array(body.utf8))
        return Array(h.finalize())
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// The sequence number and hash of the log's last line (0 and the genesis hash when empty).
    static func tail(_ path: String) throws -> (Int64, [UInt8]) {
        // Only the end of the file: the log grows with every request.
        guard let handle = FileHandle(forReadingAtPath: path) else { return (0, genesis) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        guard size > 0 else { return (0, genesis) }
        try? handle.seek(toOffset: size > 65_536 ? size - 65_536 : 0)
        let bytes = [UInt8]((try? handle.readToEnd()) ?? Data())
        let lines = bytes.split(separator: 10)
        guard let last = lines.last, let parsed = parse(String(decoding: last, as: UTF8.self)) else {
            throw TwinError.corrupt(what: path, detail: "the last audit record cannot be read; run `hosttwin audit verify`")
        }
        return (parsed.record.seq, parsed.hash)
    }

    /// A line split into its record, its hashed body and its stated hash.
    public static func parse(_ line: String) -> (record: Record, body: String, hash: [UInt8])? {
        guard let marker = line.range(of: ",\"hash\":\"", options: .backwards), line.hasSuffix("\"}") else { return nil }
        let hex = line[marker.upperBound..<line.index(line.endIndex, offsetBy: -2)]
        guard hex.count == 64, let hash = [UInt8](hexString: hex),
              let record = try? JSONDecoder().decode(Record.self, from: Data(line.utf8)) else { return nil }
        return (record, String(line[..<marker.lowerBound]), hash)
    }

    /// Reads records with `t >= since`.
    public static func read(directory: String, since: Int64 = .min) throws -> [Record] {
        let path = directory + "/audit.log"
        guard let data = FileManager.default.contents(atPath: path) else { throw TwinError.unavailable("no audit log in \(directory)") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { parse(String($0))?.record }.filter { $0.t >= since }
    }

    /// Checks the whole log and its anchors.
    public static func verify(directory: String, anchorPath: String? = nil) throws -> Verdict {
        let path = directory + "/audit.log"
        guard let data = FileManager.default.contents(atPath: path) else { throw TwinError.unavailable("no audit log in \(directory)") }
        var lines = data.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if lines.last == "" { lines.removeLast() }
        return verify(lines: lines, directory: directory, anchorPath: anchorPath)
    }

    /// Checks `lines` (a chain, oldest first) against the anchors.
    static func verify(lines: [String], directory: String, anchorPath: String?) -> Verdict {
        var prev = genesis
        var hashes: [Int64: [UInt8]] = [:]
        var lastSeq: Int64 = 0
        for (i, raw) in lines.enumerated() {
            guard let p = parse(raw) else {
                return Verdict(records: i, anchors: 0, problem: "line \(i + 1) is not an audit record", line: i + 1)
            }
            guard p.record.seq == lastSeq + 1 else {
                return Verdict(records: i, anchors: 0, problem: "line \(i + 1): record \(p.record.seq) follows \(lastSeq) (records inserted or deleted)", line: i + 1)
            }
            guard chain(prev, p.body) == p.hash else {
                return Verdict(records: i, anchors: 0, problem: "line \(i + 1): record \(p.record.seq) does not match its hash chain (edited, or a record before it was removed)", line: i + 1)
            }
            prev = p.hash
            lastSeq = p.record.seq
            hashes[lastSeq] = p.hash
        }
        let anchors = anchorPath ?? directory + "/anchors"
        let key = FileManager.default.contents(atPath: directory + "/anchor.key").map { SymmetricKey(data: $0) }
        var count = 0
        for raw in (FileManager.default.contents(atPath: anchors) ?? Data()).split(separator: 10) {
            count += 1
            let text = String(decoding: raw, as: UTF8.self)
            struct Anchor: Decodable { var seq: Int64; var hash: String; var t: Int64; var mac: String }
            guard let a = try? JSONDecoder().decode(Anchor.self, from: Data(raw)), let macAt = text.range(of: ",\"mac\":\"", options: .backwards) else {
                return Verdict(records: Int(lastSeq), anchors: count, problem: "anchor \(count) in \(anchors) cannot be read")
            }
            if let key {
                let expected = Array(HMAC<SHA256>.authenticationCode(for: Array(text[..<macAt.lowerBound].utf8), using: key))
                guard let mac = [UInt8](hexString: a.mac), TokenAuthority.constantTimeEqual(mac, expected) else {
                    return Verdict(records: Int(lastSeq), anchors: count, problem: "anchor \(count) (record \(a.seq)) has a bad signature")
                }
            }
            guard a.seq <= lastSeq else {
                return Verdict(records: Int(lastSeq), anchors: count, problem: "the log ends at record \(lastSeq) but record \(a.seq) was anchored at \(TwinTime.rfc3339(a.t)): records were cut from the end", line: Int(lastSeq) + 1)
            }
            guard hashes[a.seq]?.hex == a.hash else {
                return Verdict(records: Int(lastSeq), anchors: count, problem: "record \(a.seq) differs from its anchor of \(TwinTime.rfc3339(a.t))", line: Int(a.seq))
            }
        }
        return Verdict(records: Int(lastSeq), anchors: count, problem: nil)
    }
}

extension Array where Element == UInt8 {
    /// Bytes from hexadecimal text; nil for anything else.
    init?<S: StringProtocol>(hexString s: S) {
        guard s.utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var hi: UInt8?
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
        }
        self = out
    }
}
