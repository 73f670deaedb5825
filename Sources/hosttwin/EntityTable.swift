import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `--at TIME` and, at a hub, `--host NAME`: shared by the entity table commands.
struct AtOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Show the host as it was at TIME (RFC 3339, Unix seconds, now, -5m, -2h).", valueName: "TIME"))
    var at: String = "now"
    @Option(help: ArgumentHelp("At a hub: only this host's entities (default: every host's, with a HOST column).", valueName: "NAME"))
    var host: String?
}

/// One column of an entity table: its header and how to render a version's attribute.
struct Column {
    var header: String
    var attribute: String
    var render: (AttributeValue?) -> String = { $0?.description ?? "-" }
}

/// An entity as `--json` prints it: the entity fields plus its attributes flattened on top, so a process
/// has `pid`, `name`, ... directly (and under `attributes`).
struct EntityJSON: Encodable {
    var version: EntityVersion
    var extra: [String: AttributeValue] = [:]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        try version.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        for (k, v) in version.attributes.merging(extra, uniquingKeysWith: { a, _ in a })
        where !["kind", "key", "attributes", "valid_from", "valid_to"].contains(k) {
            try c.encode(v, forKey: Key(k))
        }
    }
}

/// Shows one kind of entity at a time, as a table or JSON.
func showEntities(_ kind: EntityKind, columns: [Column], store: StoreOptions, at: AtOptions, output: OutputOptions,
                  sort: (EntityVersion, EntityVersion) -> Bool,
                  extra: ((TwinStore, Int64, [EntityVersion]) throws -> [String: [String: AttributeValue]])? = nil,
                  filter: ((EntityVersion) -> Bool)? = nil) throws {
    let t = try parseTime(at.at, "--at")
    let s = try store.openForReading()
    let versions = try s.state(at: t, kinds: [kind]).filter { v in
        (at.host.map { v.attributes["host"] == .string($0) } ?? true) && (filter?(v) ?? true)
    }.sorted(by: sort)
    // A hub holds many hosts: say whose each entity is.
    let columns = at.host == nil && versions.contains { $0.attributes["host"] != nil } ? [Column(header: "HOST", attribute: "host")] + columns : columns
    // Extra figures are keyed by pid for processes (series carry the pid label; `HOST/pid` at a hub), by key otherwise.
    let figures = try extra?(s, t, versions) ?? [:]
    func figureKey(_ v: EntityVersion) -> String {
        guard let pid = v.attributes["pid"]?.description else { return v.key }
        return v.attributes["host"].map { "\($0.description)/\(pid)" } ?? pid
    }
    let extras = Dictionary(versions.compactMap { v in figures[figureKey(v)].map { (v.key, $0) } }, uniquingKeysWith: { a, _ in a })
    if output.json {
        try printJSON(versions.map { EntityJSON(version: $0, extra: extras[$0.key] ?? [:]) })
        return
    }
    if at.at == "now", let last = try s.lastTick(), TwinTime.nowMillis() - last > 5_000 {
        print("(the twin is not running; last observation \(TwinTime.rfc3339(last)))")
    }
    if versions.isEmpty {
        let when = at.at == "now" ? "now" : "at \(TwinTime.rfc3339(t))"
        let note = (try? s.health().first { $0.collector == collectorName(kind) && $0.status != .ok }).flatMap { $0 }.map { " (\($0.collector): \($0.message ?? $0.status.rawValue))" } ?? ""
        print("no \(kind.rawValue.replacingOccurrences(of: "_", with: " ")) \(when)\(note)")
        return
    }
    printTable(columns.map(\.header), versions.map { v in
        columns.map { c in c.render(extras[v.key]?[c.attribute] ?? v.attributes[c.attribute]) }
    })
}

func collectorName(_ kind: EntityKind) -> String {
    switch kind {
    case .processes: return "processes"
    case .listeningPorts, .connections: return "sockets"
    case .mounts, .filesystems: return "filesystem"
    case .interfaces: return "network"
    case .services: return "services"
    case .packages: return "packages"
    case .users: return "users"
    case .host: return "host"
    case .backups: return "backup"
    case .files: return "files"
    case .accounts: return "accounts"
    case .blockDevices: return "disk"
    }
}

func int(_ v: EntityVersion, _ k: String) -> Int64 { v.attributes[k]?.intValue ?? 0 }

func str(_ v: EntityVersion, _ k: String) -> String { v.attributes[k]?.description ?? "" }

extension AttributeValue {
    var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .string(let s): return Double(s)
        default: return nil
        }
    }
}
