import TwinCore
import TwinStorage

/// One line of an incident's story.
public struct TimelineEntry: Sendable, Encodable, Equatable {
    public var time: Int64
    public var host: String?
    /// `process started`, `process exited`, `port opened`, `port closed`, `connection`, `login`, `logout`,
    /// `package installed`/`upgraded`/`removed`, `service changed`, `alert firing`/..., `twin started`/`stopped`/`gap`.
    public var what: String
    public var subject: String
    public var detail: String

    enum CodingKeys: String, CodingKey { case time, host, what, subject, detail }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(TwinTime.rfc3339(time), forKey: .time)
        try c.encodeIfPresent(host, forKey: .host)
        try c.encode(what, forKey: .what)
        try c.encode(subject, forKey: .subject)
        try c.encode(detail, forKey: .detail)
    }
}

/// Forensics: everything the twin saw happen in a window merged into one ordered story — process starts and
/// exits (with user, parent and command), listening ports opened and closed, new connections, logins,
/// package, service, account and configuration file changes, alerts, and the twin's own starts, stops and gaps. What a run's first
/// observation finds (in its first 2 s) was there before it and is left out.
public enum Timeline {
    /// `present` is applied to the versions first (an API masks sensitive values for readers with it).
    public static func build(store: TwinStore, from: Int64, to: Int64, host: String? = nil, limit: Int = 10_000,
                             present: ([EntityVersion]) -> [EntityVersion] = { $0 }) throws -> [TimelineEntry] {
        let kinds: [EntityKind] = [.processes, .listeningPorts, .connections, .users, .packages, .services, .files, .accounts]
        let started = present(try store.versionsStarting(from: from, to: to, kinds: kinds))
        let ended = present(try store.versionsEnding(from: from, to: to).filter { kinds.contains($0.kind) })
        struct K: Hashable { var kind: EntityKind; var key: String; var t: Int64 }
        var endAt: [K: EntityVersion] = [:]
        for e in ended { endAt[K(kind: e.kind, key: e.key, t: e.validTo!)] = e }
        var startAt = Set<K>()
        var out: [TimelineEntry] = []
        // What a run's first observations find was there before: not events of the story.
        let runStarts = try store.runs().map(\.started)
        func atRunStart(_ t: Int64) -> Bool { runStarts.contains { t >= $0 && t <= $0 + 2_000 } }
        func hostOf(_ v: EntityVersion) -> String? { v.attributes["host"]?.description }
        func a(_ v: EntityVersion, _ name: String) -> String { v.attributes[name].map { $0 == .null ? "-" : $0.description } ?? "-" }
        for s in started {
            let k = K(kind: s.kind, key: s.key, t: s.validFrom)
            startAt.insert(k)
            let before = endAt[k]
            if before == nil, atRunStart(s.validFrom) { continue }
            guard let e = entry(s, before: before, appeared: before == nil, a) else { continue }
            out.append(TimelineEntry(time: s.validFrom, host: hostOf(s), what: e.0, subject: e.1, detail: e.2))
        }
        for e in ended where !startAt.contains(K(kind: e.kind, key: e.key, t: e.validTo!)) {
            let what: String, subject: String, detail: String
            switch e.kind {
            case .processes: (what, subject, detail) = ("process exited", "pid \(a(e, "pid"))", "\(a(e, "user")): \(a(e, "command"))")
            case .listeningPorts: (what, subject, detail) = ("port closed", "\(a(e, "protocol")) \(a(e, "address")):\(a(e, "port"))", a(e, "process"))
            case .connections: (what, subject, detail) = ("connection closed", "\(a(e, "local_address")):\(a(e, "local_port")) → \(a(e, "remote_address")):\(a(e, "remote_port"))", a(e, "process"))
            case .users: (what, subject, detail) = ("logout", a(e, "user"), "\(a(e, "tty")) from \(a(e, "host"))")
            case .packages: (what, subject, detail) = ("package removed", a(e, "name"), a(e, "version"))
            case .services: (what, subject, detail) = ("service gone", a(e, "name"), a(e, "active"))
            case .files: (what, subject, detail) = ("file removed", a(e, "path"), a(e, "type"))
            case .accounts: (what, subject, detail) = ("account removed", a(e, "name"), "uid \(a(e, "uid"))")
            default: continue
            }
            out.append(TimelineEntry(time: e.validTo!, host: hostOf(e), what: what, subject: subject, detail: detail))
        }
        // Alerts and the twin's own events (runs, gaps) from the events table.
        for ev in try store.events(from: from, to: to, limit: limit) where ev.kind == nil {
            switch ev.type {
            case .alert:
                out.append(TimelineEntry(time: ev.time, host: ev.key.flatMap(hostLabel), what: "alert", subject: ev.message ?? "", detail: ev.key ?? ""))
            case .started, .stopped, .gap:
                out.append(TimelineEntry(time: ev.time, host: nil, what: "twin \(ev.type.rawValue)", subject: "", detail: ev.message ?? ""))
            default: break
            }
        }
        if let host { out = out.filter { $0.host == host || $0.host == nil } }
        out.sort { ($0.time, $0.what, $0.subject) < ($1.time, $1.what, $1.subject) }
        return Array(out.prefix(limit))
    }

    /// The line for a version that started: an appearance, or a change (`before` is the version it replaced).
    static func entry(_ s: EntityVersion, before: EntityVersion?, appeared: Bool, _ a: (EntityVersion, String) -> String) -> (String, String, String)? {
        switch s.kind {
        case .processes:
            guard appeared else { return nil } // CPU and state changes of a running process are not the story
            return ("process started", "pid \(a(s, "pid"))", "\(a(s, "user")) (parent \(a(s, "ppid"))): \(a(s, "command"))")
        case .listeningPorts:
            guard appeared else { return nil }
            return ("port opened", "\(a(s, "protocol")) \(a(s, "address")):\(a(s, "port"))", a(s, "process"))
        case .connections:
            guard appeared else { return nil }
            return ("connection", "\(a(s, "local_address")):\(a(s, "local_port")) → \(a(s, "remote_address")):\(a(s, "remote_port"))", a(s, "process"))
        case .users:
            guard appeared else { return nil }
            return ("login", a(s, "user"), "\(a(s, "tty")) from \(a(s, "host"))")
        case .packages:
            if let before {
                // A security update becoming available changes the entity, not what is installed.
                guard a(before, "version") != a(s, "version") else { return nil }
                return ("package upgraded", a(s, "name"), "\(a(before, "version")) → \(a(s, "version"))")
            }
            return ("package installed", a(s, "name"), a(s, "version"))
        case .services:
            let was = before.map { "\(a($0, "active"))/\(a($0, "sub")) → " } ?? ""
            return (appeared ? "service appeared" : "service changed", a(s, "name"), was + "\(a(s, "active"))/\(a(s, "sub"))")
        case .accounts:
            let what = "uid \(a(s, "uid")) gid \(a(s, "gid")) home \(a(s, "home")) shell \(a(s, "shell"))"
            return (before == nil ? "account created" : "account changed", a(s, "name"), what)
        case .files:
            guard let before else {
                let suid = s.attributes["setuid"] == .bool(true) ? "set-user/group-ID " : ""
                return ("file created", a(s, "path"), "\(suid)\(a(s, "type")) \(a(s, "mode")) \(a(s, "owner")):\(a(s, "group"))")
            }
            // What changed, by name: the text itself is for `hosttwin files diff`.
            let what = TwinEvent.changes(from: before.attributes, to: s.attributes).map(\.attribute)
                .filter { !["mtime", "size", "secret_content", "content"].contains($0) }
                .map { $0 == "sha256" ? "content" : $0 == "mode" ? "mode \(a(before, "mode")) → \(a(s, "mode"))" : $0 }
            return what.isEmpty ? nil : ("file changed", a(s, "path"), what.joined(separator: ", "))
        default: return nil
        }
    }

    /// The `host` label of an alert key (`{...,host="web-1",...}`).
    static func hostLabel(_ key: String) -> String? {
        guard let r = key.range(of: "host=\"") else { return nil }
        let rest = key[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}
