import Foundation
import TwinCore
import TwinStorage

/// How much an attribute gives away: `public` (package versions, pids), `internal` (names, ports,
/// mounts) or `sensitive` (command-line arguments, user names, remote peer addresses).
public enum DataClass: String, Sendable, CaseIterable, Codable {
    case `public`, `internal`, sensitive
}

/// What the policy does with a class of values at the source: `keep` (sensitive values kept are sealed
/// at rest and shown in clear to admins only), `hash` (a keyed hash: comparable, not readable) or
/// `drop` (never stored).
public enum PolicyAction: String, Sendable, CaseIterable, Codable {
    case keep, hash, drop
}

/// The data policy (`--policy FILE`): the class of every entity attribute, and per class (and kind)
/// what happens to its values. The file has one rule per line, later lines winning; `#` starts a comment:
///
/// ```
/// keep internal                      # ACTION CLASS [KIND]
/// hash sensitive connections
/// drop sensitive users
/// class processes.command sensitive  # class KIND.ATTRIBUTE CLASS
/// resolution 1m                      # samples a destination receives: raw (default) or 1m
/// ```
///
/// `resolution 1m` matters for a token's policy at a hub: the relay or follower it lets in receives one
/// point a minute per series (rollups: a counter's last value, a gauge's mean), state as ever.
///
/// Errors name the file and line. Without a file: sensitive values are kept (sealed at rest), the rest
/// kept as they are.
public struct DataPolicy: Sendable {
    /// The default classes; attributes not listed are `internal`.
    public static let defaultClasses: [EntityKind: [String: DataClass]] = [
        .processes: ["command": .sensitive, "user": .sensitive, "pid": .public, "ppid": .public, "state": .public,
                     "start_time": .public, "kernel_thread": .public, "unit": .public],
        .connections: ["remote_address": .sensitive],
        .users: ["user": .sensitive, "host": .sensitive],
        .host: ["machine_id": .sensitive],
        .files: ["secret_content": .sensitive],
        .accounts: ["gecos": .sensitive],
        .packages: ["name": .public, "version": .public, "architecture": .public, "status": .public],
    ]

    private var classes: [EntityKind: [String: DataClass]] = DataPolicy.defaultClasses
    /// Samples leave as minute rollups only (`resolution 1m`), not raw.
    public private(set) var minuteRollups = false
    /// Actions by class, then by kind (nil: every kind).
    private var actions: [DataClass: [EntityKind?: PolicyAction]] = [:]

    public init() {}

    /// Parses a policy file's text; `file` names it in errors.
    public static func parse(_ text: String, file: String = "policy") throws -> DataPolicy {
        var p = DataPolicy()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let w = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard !w.isEmpty else { continue }
            func fail(_ m: String) -> TwinError { TwinError.badInput("\(file):\(n + 1): \(m)") }
            if w[0] == "resolution" {
                guard w.count == 2, w[1] == "raw" || w[1] == "1m" else { throw fail("expected `resolution raw` or `resolution 1m`") }
                p.minuteRollups = w[1] == "1m"
            } else if w[0] == "class" {
                guard w.count == 3 else { throw fail("expected `class KIND.ATTRIBUTE CLASS`") }
                let parts = w[1].split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2, let kind = EntityKind(rawValue: parts[0]) else {
                    throw fail("unknown KIND.ATTRIBUTE \(w[1]); kinds: \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard let c = DataClass(rawValue: w[2]) else { throw fail("unknown class \(w[2]); classes: public, internal, sensitive") }
                p.classes[kind, default: [:]][parts[1]] = c
            } else {
                guard let action = PolicyAction(rawValue: w[0]) else { throw fail("unknown rule \(w[0]); rules: keep, hash, drop, class, resolution") }
                guard w.count == 2 || w.count == 3 else { throw fail("expected `\(w[0]) CLASS [KIND]`") }
                guard let c = DataClass(rawValue: w[1]) else { throw fail("unknown class \(w[1]); classes: public, internal, sensitive") }
                var kind: EntityKind?
                if w.count == 3 {
                    guard let k = EntityKind(rawValue: w[2]) else { throw fail("unknown kind \(w[2]); kinds: \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))") }
                    kind = k
                }
                if kind == nil { p.actions[c] = [:] } // a rule for every kind overrides earlier per-kind rules
                p.actions[c, default: [:]][kind] = action
            }
        }
        return p
    }

    /// Loads a policy file.
    public static func load(_ path: String) throws -> DataPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TwinError.badInput("--policy \(path): cannot read it") }
        return try parse(text, file: path)
    }

    public func classOf(_ kind: EntityKind, _ attribute: String) -> DataClass { classes[kind]?[attribute] ?? .internal }

    public func action(_ kind: EntityKind, _ c: DataClass) -> PolicyAction { actions[c]?[kind] ?? actions[c]?[nil] ?? .keep }

    /// Whether collection needs ``apply(to:keys:)`` at all (some class is hashed or dropped).
    public var changesValues: Bool { actions.values.contains { $0.values.contains { $0 != .keep } } }

    /// Applies the hash and drop rules to what a tick observed, before it is compared or stored.
    public func apply(to entities: inout [EntityKind: [Entity]], keys: KeyRing) {
        guard changesValues else { return }
        for (kind, list) in entities {
            var out = list
            for i in out.indices {
                for (name, value) in out[i].attributes {
                    switch action(kind, classOf(kind, name)) {
                    case .keep: continue
                    case .drop: out[i].attributes[name] = nil
                    case .hash: out[i].attributes[name] = keys.hash(value, context: name)
                    }
                }
                // The key of a connection names its remote address: it gets the same treatment.
                if kind == .connections, action(kind, classOf(kind, "remote_address")) != .keep {
                    out[i].key = Self.connectionKey(out[i].key, remote: out[i].attributes["remote_address"]?.description ?? "-")
                }
            }
            entities[kind] = out
        }
    }

    /// Applies the hash and drop rules to state changes forwarded to another hub (a relay's destination
    /// policy, `serve --push URL --forward-policy FILE`): attributes as ``apply(to:keys:)`` does, and a
    /// connection's key — opened or closed — rewritten from the remote address in the key itself, so the
    /// open and the close of one connection still name the same entity upstream.
    public func forwarding(opened: inout [Entity], closed: inout [(kind: EntityKind, key: String)], keys: KeyRing) {
        guard changesValues else { return }
        func key(_ kind: EntityKind, _ key: String) -> String {
            guard kind == .connections, let (_, tail) = Self.connectionKeyParts(key), let colon = tail.lastIndex(of: ":") else { return key }
            switch action(kind, classOf(kind, "remote_address")) {
            case .keep: return key
            case .drop: return Self.connectionKey(key, remote: "-")
            case .hash: return Self.connectionKey(key, remote: keys.hash(.string(String(tail[..<colon])), context: "remote_address").description)
            }
        }
        for i in opened.indices {
            let kind = opened[i].kind
            for (name, value) in opened[i].attributes {
                switch action(kind, classOf(kind, name)) {
                case .keep: continue
                case .drop: opened[i].attributes[name] = nil
                case .hash: opened[i].attributes[name] = keys.hash(value, context: name)
                }
            }
            opened[i].key = key(kind, opened[i].key)
        }
        for i in closed.indices { closed[i].key = key(closed[i].kind, closed[i].key) }
    }

    /// A connection's key (`tcp/LOCAL:PORT/REMOTE:PORT`) with the remote address replaced.
    static func connectionKey(_ key: String, remote: String) -> String {
        guard let (head, tail) = connectionKeyParts(key), let colon = tail.lastIndex(of: ":") else { return key }
        return head + remote + tail[colon...]
    }

    /// A connection key `PROTO/LOCAL:PORT/REMOTE:PORT` — at a hub `HOST/PROTO/…` — cut before its remote
    /// part. Cut by counting slashes from the left: a sealed remote address (base64) may hold slashes.
    static func connectionKeyParts(_ key: String) -> (head: Substring, remote: Substring)? {
        let hostPrefixed = !(key.hasPrefix("tcp/") || key.hasPrefix("udp/"))
        var i = key.startIndex
        for _ in 0..<(hostPrefixed ? 3 : 2) {
            guard let slash = key[i...].firstIndex(of: "/") else { return nil }
            i = key.index(after: slash)
        }
        return (key[..<i], key[i...])
    }

    /// Attributes as a reader sees them: sensitive values kept in clear for admins become `***`.
    public func redactedForReaders(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue] {
        var out = attributes
        for (name, value) in attributes where classOf(kind, name) == .sensitive && action(kind, .sensitive) == .keep && value != .null {
            out[name] = .string(Redactor.mask)
        }
        return out
    }

    /// An entity key as a reader sees it (a connection's remote address masked).
    public func redactedKey(_ kind: EntityKind, _ key: String) -> String {
        guard kind == .connections, action(kind, .sensitive) == .keep, classOf(kind, "remote_address") == .sensitive else { return key }
        return Self.connectionKey(key, remote: Redactor.mask)
    }
}

/// Encryption at rest by the policy: sensitive values that are kept are sealed with the key ring when a
/// version is written, and opened on read where the keys can be read.
public struct PolicyCipher: AttributeCipher {
    public let policy: DataPolicy
    public let keys: KeyRing

    public init(policy: DataPolicy, keys: KeyRing) {
        self.policy = policy
        self.keys = keys
    }

    public func seal(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue] {
        guard policy.action(kind, .sensitive) == .keep else { return attributes }
        var out = attributes
        for (name, value) in attributes where value != .null && KeyRing.sealedKeyID(value) == nil && policy.classOf(kind, name) == .sensitive {
            out[name] = keys.seal(value, context: "\(kind.rawValue).\(name)")
        }
        return out
    }

    public func open(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue] {
        var out = attributes
        // A value this process cannot open (no key: another user on a shared store) reads as masked.
        for (name, value) in attributes where KeyRing.sealedKeyID(value) != nil {
            out[name] = keys.open(value, context: "\(kind.rawValue).\(name)") ?? .string(Redactor.mask)
        }
        return out
    }

    /// A connection's key names its remote address: sealed like the attribute.
    public func seal(_ kind: EntityKind, key: String) -> String {
        guard kind == .connections, policy.action(kind, .sensitive) == .keep, policy.classOf(kind, "remote_address") == .sensitive,
              let remote = Self.remote(of: key), !remote.hasPrefix(KeyRing.prefix) else { return key }
        return DataPolicy.connectionKey(key, remote: keys.seal(.string(remote), context: "connections.remote_address").description)
    }

    public func open(_ kind: EntityKind, key: String) -> String {
        guard kind == .connections, let remote = Self.remote(of: key), remote.hasPrefix(KeyRing.prefix) else { return key }
        return DataPolicy.connectionKey(key, remote: keys.open(.string(remote), context: "connections.remote_address")?.description ?? Redactor.mask)
    }

    public func isSealed(_ kind: EntityKind, attribute: String) -> Bool {
        policy.action(kind, .sensitive) == .keep && policy.classOf(kind, attribute) == .sensitive
    }

    public func isSealed(_ kind: EntityKind, key: String) -> Bool {
        kind == .connections && isSealed(kind, attribute: "remote_address") && Self.remote(of: key) != nil
    }

    public func clear(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue]? {
        var out = attributes
        for (name, value) in attributes where KeyRing.sealedKeyID(value) != nil {
            guard let clear = keys.open(value, context: "\(kind.rawValue).\(name)") else { return nil }
            out[name] = clear
        }
        return out
    }

    public func clear(_ kind: EntityKind, key: String) -> String? {
        guard kind == .connections, let remote = Self.remote(of: key), remote.hasPrefix(KeyRing.prefix) else { return key }
        return keys.open(.string(remote), context: "connections.remote_address").map { DataPolicy.connectionKey(key, remote: $0.description) }
    }

    public func sealSection(_ bytes: [UInt8]) -> [UInt8]? { keys.sealBytes(bytes, context: "version block") }

    public func openSection(_ sealed: [UInt8]) -> [UInt8]? { keys.openBytes(sealed, context: "version block") }

    public func isStale(section sealed: [UInt8]) -> Bool { KeyRing.keyID(ofSealedBytes: sealed) != keys.currentID }

    /// The remote address inside `[HOST/]tcp/LOCAL:PORT/REMOTE:PORT` (an IPv6 address holds colons, so
    /// the last colon ends it).
    static func remote(of key: String) -> String? {
        guard let (_, tail) = DataPolicy.connectionKeyParts(key), let colon = tail.lastIndex(of: ":") else { return nil }
        return String(tail[..<colon])
    }
}

extension PolicyCipher {
    /// Re-seals every stored value sealed under a key other than the current one, after waiting for running
    /// writers to pick up the current key (they re-read it within a second); then checks that none is
    /// left and deletes the other keys. Returns the rows rewritten and the keys deleted.
    public func retireOldKeys(store: TwinStore, settle: Duration = .seconds(2)) throws -> (rows: Int, keys: [String]) {
        guard let current = keys.currentID else { throw TwinError.unavailable("no current key in \(keys.directory)") }
        Thread.sleep(forTimeInterval: Double(settle.components.seconds) + Double(settle.components.attoseconds) / 1e18)
        func reseal(_ kind: EntityKind, _ key: String, _ attrs: [String: AttributeValue]) throws -> (String, [String: AttributeValue])? {
            var out = attrs, touched = false
            for (name, value) in attrs {
                guard let id = KeyRing.sealedKeyID(value), id != current else { continue }
                guard let clear = keys.open(value, context: "\(kind.rawValue).\(name)") else {
                    throw TwinError.unavailable("a value of \(kind.rawValue).\(name) is sealed under key \(id), which cannot open it; nothing was deleted")
                }
                out[name] = keys.seal(clear, context: "\(kind.rawValue).\(name)")
                touched = true
            }
            var newKey = key
            if kind == .connections, let remote = Self.remote(of: key), let id = KeyRing.sealedKeyID(.string(remote)), id != current {
                newKey = seal(kind, key: open(kind, key: key))
                touched = true
            }
            return touched ? (newKey, out) : nil
        }
        let rows = try store.rewriteVersions(reseal)
        // A writer that sealed under an old key while the first pass ran: a second pass finds it.
        let stragglers = try store.rewriteVersions(reseal)
        let left = try store.rewriteVersions { kind, key, attrs in
            let old = attrs.values.contains { KeyRing.sealedKeyID($0).map { $0 != current } ?? false }
                || (kind == .connections && Self.remote(of: key).flatMap { KeyRing.sealedKeyID(.string($0)) }.map { $0 != current } ?? false)
            if old { throw TwinError.unavailable("values under an old key remain after re-sealing; nothing was deleted") }
            return nil
        }
        _ = left
        return (rows + stragglers, try keys.deleteRetired())
    }
}

extension DataPolicy {
    /// Attribute changes as a reader sees them: old and new sensitive values masked.
    public func redactedForReaders(_ kind: EntityKind, _ changes: [TwinEvent.Change]) -> [TwinEvent.Change] {
        guard action(kind, .sensitive) == .keep else { return changes }
        return changes.map { c in
            guard classOf(kind, c.attribute) == .sensitive else { return c }
            return TwinEvent.Change(attribute: c.attribute, old: c.old.map { _ in .string(Redactor.mask) }, new: c.new.map { _ in .string(Redactor.mask) })
        }
    }

    /// Events as a reader sees them (keys and changed values masked where sensitive).
    public func redactedForReaders(_ events: [TwinEvent]) -> [TwinEvent] {
        events.map { e in
            guard let kind = e.kind else { return e }
            var e = e
            e.key = e.key.map { redactedKey(kind, $0) }
            e.changes = redactedForReaders(kind, e.changes)
            return e
        }
    }
}
