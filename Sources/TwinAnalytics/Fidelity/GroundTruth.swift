#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TwinCore

/// One entity as an independent tool saw it, in the form both sides are compared in: a key and the
/// attributes that are compared, as text. ``GroundTruth`` parses the tools' output into these, and
/// ``GroundTruth/comparable(_:)`` turns the twin's versions into the same form.
public struct ComparableEntity: Hashable, Sendable, Codable {
    public var kind: EntityKind
    public var key: String
    public var attributes: [String: String]
    /// For the twin's entities: when its version began (ms since the epoch); nil for the tools'.
    public var since: Int64?

    public init(kind: EntityKind, key: String, attributes: [String: String], since: Int64? = nil) {
        self.kind = kind
        self.key = key
        self.attributes = attributes
        self.since = since
    }
}

/// Parsers for the output of the Debian tools the fidelity benchmark takes as ground truth (procps `ps`,
/// iproute2 `ss` and `ip`, util-linux `findmnt`, `dpkg-query`), and the twin's versions in the same form.
/// Pure functions: the commands and their exact arguments are in ``GroundTruth/Tool``.
///
/// What is compared, per kind (the key, then the attributes):
/// - processes: pid; ppid, uid, name (kworkers without their current work queue, as the twin keeps them);
/// - listening ports: protocol/address/port with canonical addresses; the owning pid where both sides know it;
/// - connections: protocol/local address:port/remote address:port;
/// - mounts: mount point (the topmost mount where several share it); device, file system type, per-mount options;
/// - packages: name:architecture of installed packages; version;
/// - interfaces: name; MTU, hardware address, operational state.
public enum GroundTruth {
    /// A command that captures one kind, run without a shell.
    public struct Tool: Sendable {
        public var kind: EntityKind
        public var executable: String
        public var arguments: [String]
        /// Environment additions (`ps` prints start times in UTC).
        public var environment: [String: String] = [:]
        /// Which parser reads its output.
        public var parse: @Sendable (String) -> [ComparableEntity]
    }

    /// The tools, one run per kind (two for listeners: `ss` prints IPv4 and IPv6 wildcards alike as `*`; a
    /// connection's family is its peer's, so one run lists both and the run is half as long).
    public static let tools: [Tool] = [
        Tool(kind: .processes, executable: "/usr/bin/ps", arguments: ["-e", "-o", "pid=,ppid=,uid=,comm="], parse: parsePS),
        Tool(kind: .listeningPorts, executable: "/usr/bin/ss", arguments: ["-Htulnp", "-4"], parse: { parseSS($0, family: "ipv4", listening: true) }),
        Tool(kind: .listeningPorts, executable: "/usr/bin/ss", arguments: ["-Htulnp", "-6"], parse: { parseSS($0, family: "ipv6", listening: true) }),
        Tool(kind: .connections, executable: "/usr/bin/ss", arguments: ["-Htun", "state", "established"], parse: { parseSS($0, family: nil, listening: false) }),
        Tool(kind: .mounts, executable: "/usr/bin/findmnt", arguments: ["-rn", "--nofsroot", "-o", "TARGET,SOURCE,FSTYPE,VFS-OPTIONS"], parse: parseFindmnt),
        Tool(kind: .packages, executable: "/usr/bin/dpkg-query", arguments: ["-W", "-f", "${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n"], parse: parseDpkgQuery),
        Tool(kind: .interfaces, executable: "/usr/sbin/ip", arguments: ["-j", "link"], parse: parseIPLink),
    ]

    /// The kinds the benchmark compares, in report order.
    public static let kinds: [EntityKind] = [.processes, .listeningPorts, .connections, .mounts, .packages, .interfaces]

    // MARK: Parsers

    /// `ps -e -o pid=,ppid=,uid=,comm=`. The command name is the rest of the line (it may hold spaces).
    public static func parsePS(_ text: String) -> [ComparableEntity] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
            guard f.count == 4, let pid = Int(f[0]), let ppid = Int(f[1]), let uid = Int(f[2]) else { return nil }
            return ComparableEntity(kind: .processes, key: String(pid),
                                    attributes: ["ppid": String(ppid), "uid": String(uid), "name": stableKernelThreadName(String(f[3]))])
        }
    }


    /// `ss -Htulnp` (listening: `tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))`) or
    /// `ss -Htun state established` (no state column). UDP counts as listening when its peer is `*`, as
    /// connected when it has one, like the twin. `family` (what `ss -4`/`-6` chose) says what a `*` address
    /// is; nil takes each line's from its peer (an IPv6 peer is printed `[addr]:port`), for connections.
    public static func parseSS(_ text: String, family: String?, listening: Bool) -> [ComparableEntity] {
        text.split(separator: "\n").compactMap { line in
            var f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 5, f[0] == "tcp" || f[0] == "udp" else { return nil }
            let proto = f[0]
            if f[1].allSatisfy({ $0.isLetter || $0 == "-" }) { f.remove(at: 1) } // the state column
            let family = family ?? (f[4].hasPrefix("[") ? "ipv6" : "ipv4")
            guard f.count >= 5, let local = splitEndpoint(f[3], family: family), let peer = splitEndpoint(f[4], family: family) else { return nil }
            if listening {
                if proto == "udp", peer.port != "*" { return nil }
                var attrs: [String: String] = [:]
                if f.count > 5, let pid = firstPID(f[5...].joined(separator: " ")) { attrs["pid"] = pid }
                return ComparableEntity(kind: .listeningPorts, key: "\(proto)/\(local.address)/\(local.port)", attributes: attrs)
            }
            guard peer.port != "*" else { return nil }
            return ComparableEntity(kind: .connections, key: "\(proto)/\(local.address):\(local.port)/\(peer.address):\(peer.port)", attributes: [:])
        }
    }

    /// `127.0.0.1:22`, `[::1]:22`, `*:68`, `127.0.0.53%lo:53` → canonical address and port.
    static func splitEndpoint(_ s: String, family: String) -> (address: String, port: String)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        var address = String(s[..<colon])
        let port = String(s[s.index(after: colon)...])
        if address.hasPrefix("["), address.hasSuffix("]") { address = String(address.dropFirst().dropLast()) }
        if let percent = address.firstIndex(of: "%") { address = String(address[..<percent]) }
        if address == "*" { address = family == "ipv6" ? "::" : "0.0.0.0" }
        return (canonicalAddress(address), port)
    }

    /// `users:(("sshd",pid=812,fd=3),...)` → the lowest pid (the twin keeps the lowest of a shared socket's owners).
    static func firstPID(_ s: String) -> String? {
        var pids: [Int] = []
        var rest = Substring(s)
        while let r = rest.range(of: "pid=") {
            rest = rest[r.upperBound...]
            if let n = Int(rest.prefix { $0.isNumber }) { pids.append(n) }
        }
        return pids.min().map(String.init)
    }

    /// An IP address in one spelling (inet_ntop's): `0:0::1` and `::1` compare equal. Unparsable text is kept.
    public static func canonicalAddress(_ s: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, s, &v4) == 1, inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil {
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        if inet_pton(AF_INET6, s, &v6) == 1, inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil {
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return s
    }

    /// `findmnt -rn --nofsroot -o TARGET,SOURCE,FSTYPE,VFS-OPTIONS`; raw output escapes blanks as `\x20`.
    /// Where mounts share a target the last (topmost) one is kept, as in the twin.
    public static func parseFindmnt(_ text: String) -> [ComparableEntity] {
        var byTarget: [String: ComparableEntity] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: false).map { unescapeHex(String($0)) }
            guard f.count == 4, !f[0].isEmpty else { continue }
            byTarget[f[0]] = ComparableEntity(kind: .mounts, key: f[0], attributes: ["device": f[1], "fstype": f[2], "options": f[3]])
        }
        return Array(byTarget.values)
    }

    /// `\x20` → a space (util-linux's raw output escaping).
    static func unescapeHex(_ s: String) -> String {
        guard s.contains("\\x") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, b[i + 1] == UInt8(ascii: "x"),
               let v = UInt8(String(decoding: b[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                out.append(v); i += 4
            } else {
                out.append(b[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `dpkg-query -W -f '${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n'`: packages whose
    /// status (the abbreviation's second letter) is installed.
    public static func parseDpkgQuery(_ text: String) -> [ComparableEntity] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count >= 4, !f[0].isEmpty, f[3].count >= 2, f[3].dropFirst().first == "i" else { return nil }
            return ComparableEntity(kind: .packages, key: "\(f[0]):\(f[1])", attributes: ["version": String(f[2])])
        }
    }

    /// `ip -j link`: name, MTU, hardware address and operational state (lower case, as sysfs spells it).
    public static func parseIPLink(_ text: String) -> [ComparableEntity] {
        guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else { return [] }
        return list.compactMap { link in
            guard let name = link["ifname"] as? String else { return nil }
            var attrs: [String: String] = [:]
            if let mtu = link["mtu"] as? Int { attrs["mtu"] = String(mtu) }
            if let address = link["address"] as? String { attrs["address"] = address }
            if let state = link["operstate"] as? String { attrs["operstate"] = state.lowercased() }
            return ComparableEntity(kind: .interfaces, key: name, attributes: attrs)
        }
    }

    // MARK: The twin's side

    /// The twin's versions in the compared form (the same keys and attributes as the parsers give).
    public static func comparable(_ versions: [EntityVersion]) -> [ComparableEntity] {
        versions.compactMap { v in comparable(v).map { var e = $0; e.since = v.validFrom; return e } }
    }

    private static func comparable(_ v: EntityVersion) -> ComparableEntity? {
        let a = v.attributes
        func text(_ k: String) -> String? {
            switch a[k] {
            case .int(let i)?: return String(i)
            case .string(let s)?: return s
            case .double(let d)?: return String(Int64(d))
            case .bool(let b)?: return String(b)
            default: return nil
            }
        }
        switch v.kind {
        case .processes:
            guard let pid = text("pid") else { return nil }
            return ComparableEntity(kind: .processes, key: pid, attributes: ["ppid": text("ppid") ?? "", "uid": text("uid") ?? "", "name": text("name") ?? ""])
        case .listeningPorts:
            guard let proto = text("protocol"), let address = text("address"), let port = text("port") else { return nil }
            var attrs: [String: String] = [:]
            if let pid = text("pid") { attrs["pid"] = pid }
            return ComparableEntity(kind: .listeningPorts, key: "\(proto)/\(canonicalAddress(address))/\(port)", attributes: attrs)
        case .connections:
            guard let proto = text("protocol"), let la = text("local_address"), let lp = text("local_port"),
                  let ra = text("remote_address"), let rp = text("remote_port") else { return nil }
            return ComparableEntity(kind: .connections, key: "\(proto)/\(canonicalAddress(la)):\(lp)/\(canonicalAddress(ra)):\(rp)", attributes: [:])
        case .mounts:
            return ComparableEntity(kind: .mounts, key: v.key, attributes: ["device": text("device") ?? "", "fstype": text("fstype") ?? "", "options": text("options") ?? ""])
        case .packages:
            return ComparableEntity(kind: .packages, key: v.key, attributes: ["version": text("version") ?? ""])
        case .interfaces:
            var attrs: [String: String] = [:]
            for k in ["mtu", "address", "operstate"] { if let t = text(k) { attrs[k] = t } }
            return ComparableEntity(kind: .interfaces, key: v.key, attributes: attrs)
        default:
            return nil
        }
    }
}
