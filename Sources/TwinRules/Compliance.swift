import TwinCore
import TwinStorage

/// The compliance pack's checks: each a function of the twin's state at one time (its `files`,
/// `listening_ports` and `packages` entities), one finding per failing thing, per host. The pack
/// (`hosttwin rules show --compliance`) wraps each in an alert rule, so a failure is an alert with a start
/// ("failing since"), stored, notified, silenced and shown as of any time like any other.
public enum ComplianceCheck: Sendable, Equatable, CustomStringConvertible {
    /// sshd lets root log in with a password or key (`PermitRootLogin yes`).
    case sshRootLogin
    /// sshd accepts passwords (`PasswordAuthentication` not `no`; OpenSSH's default is yes).
    case sshPasswordAuthentication
    /// A file or directory under a watched path (`/etc`) that anyone may write.
    case worldWritable
    /// A set-user-ID or set-group-ID file that no installed package owns and the allow-list does not name.
    case unexpectedSUID(allowed: [String])
    /// A port listening beyond loopback that the allow-list does not name.
    case unlistedListener(allowedPorts: [Int64])
    /// An installed package for which a security list of apt offers a newer version (the packages collector
    /// reads the lists `apt update` fetched).
    case securityUpdates

    public static let names = ["ssh_root_login", "ssh_password_authentication", "world_writable", "unexpected_suid", "unlisted_listener", "security_updates"]

    public var name: String {
        switch self {
        case .sshRootLogin: return "ssh_root_login"
        case .sshPasswordAuthentication: return "ssh_password_authentication"
        case .worldWritable: return "world_writable"
        case .unexpectedSUID: return "unexpected_suid"
        case .unlistedListener: return "unlisted_listener"
        case .securityUpdates: return "security_updates"
        }
    }

    public var description: String {
        switch self {
        case .unexpectedSUID(let a) where !a.isEmpty: return "compliance: \(name) allow \(a.joined(separator: ","))"
        case .unlistedListener(let p): return "compliance: \(name) allow ports \(p.map(String.init).joined(separator: ","))"
        default: return "compliance: \(name)"
        }
    }

    /// The entity kinds the check reads.
    public var kinds: [EntityKind] {
        switch self {
        case .unlistedListener: return [.listeningPorts]
        case .securityUpdates: return [.packages]
        default: return [.files]
        }
    }

    /// One finding per failing thing: labels (`check`, `host` at a hub, and what fails as `path`, `port`,
    /// `package`, `setting`) and an `evidence` label saying what was seen where.
    public func findings(_ entities: [EntityVersion]) -> [(labels: Labels, value: Double)] {
        var byHost: [String: [EntityVersion]] = [:]
        for e in entities { byHost[e.attributes["host"]?.description ?? "", default: []].append(e) }
        var out: [(Labels, Double)] = []
        for (host, list) in byHost.sorted(by: { $0.key < $1.key }) {
            for f in findings(host: list) {
                var l = [Label("check", name)] + f.map { Label($0.0, $0.1) }
                if !host.isEmpty { l.append(Label("host", host)) }
                out.append((Labels(l), 1))
            }
        }
        return out
    }

    private func findings(host list: [EntityVersion]) -> [[(String, String)]] {
        func a(_ v: EntityVersion, _ k: String) -> String { v.attributes[k]?.description ?? "" }
        switch self {
        case .sshRootLogin, .sshPasswordAuthentication:
            var texts: [String: String] = [:]
            for v in list where v.kind == .files {
                if case .string(let s)? = v.attributes["content"] ?? v.attributes["secret_content"] { texts[a(v, "path")] = s }
            }
            guard texts["/etc/ssh/sshd_config"] != nil else { return [] }
            let settings = SSHDConfig.effective(texts)
            let key = self == .sshRootLogin ? "permitrootlogin" : "passwordauthentication"
            let s = settings[key]
            let value = s?.value.lowercased() ?? (self == .sshRootLogin ? "prohibit-password" : "yes")
            let failing = self == .sshRootLogin ? value == "yes" : value != "no"
            guard failing else { return [] }
            let word = self == .sshRootLogin ? "PermitRootLogin" : "PasswordAuthentication"
            return [[("setting", "\(word) \(value)"), ("evidence", s.map { "\($0.file):\($0.line)" } ?? "OpenSSH's default (not set in /etc/ssh/sshd_config)")]]
        case .worldWritable:
            return list.filter { v in
                v.kind == .files && a(v, "watch") == "config" && a(v, "type") != "symlink"
                    && (UInt32(a(v, "mode"), radix: 8).map { $0 & 0o002 != 0 } ?? false)
            }.map { [("path", a($0, "path")), ("evidence", "\(a($0, "type")) mode \(a($0, "mode")) owner \(a($0, "owner"))")] }
        case .unexpectedSUID(let allowed):
            return list.filter { v in
                v.kind == .files && v.attributes["setuid"] == .bool(true) && (v.attributes["package"] ?? .null) == .null && !allowed.contains(a(v, "path"))
            }.map { [("path", a($0, "path")), ("evidence", "mode \(a($0, "mode")) owner \(a($0, "owner")), in no installed package")] }
        case .unlistedListener(let ports):
            return list.filter { v in
                guard v.kind == .listeningPorts, let port = v.attributes["port"]?.intValue else { return false }
                let address = a(v, "address")
                let loopback = address.hasPrefix("127.") || address == "::1" || address == "localhost"
                return !loopback && !ports.contains(port)
            }.map { [("port", a($0, "port")), ("protocol", a($0, "protocol")), ("evidence", "\(a($0, "process")) on \(a($0, "address")):\(a($0, "port"))")] }
        case .securityUpdates:
            return list.filter { $0.kind == .packages && ($0.attributes["security_update"] ?? .null) != .null }
                .map { [("package", a($0, "name")), ("evidence", "\(a($0, "version")) installed, security update \(a($0, "security_update"))")] }
        }
    }
}

/// sshd_config as sshd reads it: keywords case-insensitive, the first value of each wins, `Include`
/// (relative to /etc/ssh, with `*` and `?` in names) read in place, and `Match` blocks left out (they
/// apply to some connections only). `texts` maps paths to the files' text as the twin kept it.
public enum SSHDConfig {
    public struct Setting: Equatable, Sendable {
        public var value: String, file: String, line: Int
    }

    public static func effective(_ texts: [String: String], main: String = "/etc/ssh/sshd_config") -> [String: Setting] {
        var out: [String: Setting] = [:]
        var depth = 0
        func read(_ path: String) {
            guard depth < 16, let text = texts[path] else { return }
            depth += 1
            defer { depth -= 1 }
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.drop { $0 == " " || $0 == "\t" }
                if line.isEmpty || line.hasPrefix("#") { continue }
                let words = line.split { $0 == " " || $0 == "\t" || $0 == "=" || $0 == "\r" }.map(String.init)
                guard let keyword = words.first?.lowercased() else { continue }
                if keyword == "match" { return }
                if keyword == "include" {
                    for pattern in words.dropFirst() {
                        let full = pattern.hasPrefix("/") ? pattern : "/etc/ssh/" + pattern
                        for p in texts.keys.filter({ glob(full, $0) }).sorted() { read(p) }
                    }
                    continue
                }
                if out[keyword] == nil, words.count >= 2 { out[keyword] = Setting(value: words[1], file: path, line: n + 1) }
            }
        }
        read(main)
        return out
    }

    /// Shell-style matching of `*` and `?` (neither crosses a `/`).
    static func glob(_ pattern: String, _ path: String) -> Bool {
        let p = Array(pattern.utf8), s = Array(path.utf8)
        // Backtracking is exponential in the stars: a pattern with more than four is not followed.
        guard p.filter({ $0 == UInt8(ascii: "*") }).count <= 4 else { return false }
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == s.count }
            switch p[i] {
            case UInt8(ascii: "*"):
                var k = j
                while true {
                    if match(i + 1, k) { return true }
                    if k == s.count || s[k] == UInt8(ascii: "/") { return false }
                    k += 1
                }
            case UInt8(ascii: "?"): return j < s.count && s[j] != UInt8(ascii: "/") && match(i + 1, j + 1)
            default: return j < s.count && s[j] == p[i] && match(i + 1, j + 1)
            }
        }
        return match(0, 0)
    }
}

/// One check's result for one host at one time, as `hosttwin compliance` shows it.
public struct ComplianceResult: Sendable, Encodable {
    public var host: String?
    public var check: String
    public var passed: Bool
    /// When the earliest of its failures began, from the compliance pack's alerts (nil: passing, or the pack
    /// was not running then).
    public var failingSince: Int64?
    /// What fails: each finding's labels (`path`, `port`, `setting`, `evidence`, ...).
    public var findings: [[String: String]]

    enum CodingKeys: String, CodingKey { case host, check, passed, failingSince = "failing_since", findings }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(host, forKey: .host)
        try c.encode(check, forKey: .check)
        try c.encode(passed, forKey: .passed)
        try c.encode(failingSince.map(TwinTime.rfc3339), forKey: .failingSince)
        try c.encode(findings, forKey: .findings)
    }
}

extension ComplianceCheck {
    /// The checks of a rule file (the compliance pack, or a user's copy of it), in its order.
    public static func checks(of file: RuleFile) -> [ComplianceCheck] {
        file.rules.compactMap { r in
            if case .twin(.compliance(let c)) = r.condition { return c }
            return nil
        }
    }

    /// Every check for every host at `at`, evaluated on the state as of then; "failing since" from the pack's
    /// alerts active then (the same findings, by labels). `hosts` lists a hub's hosts (nil: this host only).
    public static func report(_ checks: [ComplianceCheck], state: (ComplianceCheck) throws -> [EntityVersion], alerts: [AlertRecord],
                              hosts: [String]?) rethrows -> [ComplianceResult] {
        var out: [ComplianceResult] = []
        for check in checks {
            var byHost: [String: [[String: String]]] = [:]
            for f in check.findings(try state(check)) {
                var labels = f.labels.dictionary
                let host = labels.removeValue(forKey: "host") ?? ""
                labels["check"] = nil
                byHost[host, default: []].append(labels)
            }
            for host in hosts ?? [""] {
                let findings = byHost[host] ?? []
                func same(_ a: AlertRecord) -> Bool {
                    guard a.labels["check"] == check.name, (a.labels["host"] ?? "") == host else { return false }
                    return findings.contains { f in f.allSatisfy { a.labels[$0.key] == $0.value } }
                }
                let since = alerts.filter(same).map(\.activeAt).min()
                out.append(ComplianceResult(host: hosts == nil ? nil : host, check: check.name, passed: findings.isEmpty,
                                            failingSince: findings.isEmpty ? nil : since, findings: findings))
            }
        }
        return out
    }
}
