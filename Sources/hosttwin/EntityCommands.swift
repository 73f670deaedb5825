import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `--at TIME`, shared by the entity table commands.
struct AtOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Show the host as it was at TIME (RFC 3339, Unix seconds, now, -5m, -2h).", valueName: "TIME"))
    var at: String = "now"
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
    let versions = try s.state(at: t, kinds: [kind]).filter { filter?($0) ?? true }.sorted(by: sort)
    // Extra figures are keyed by pid for processes (series carry the pid label), by key otherwise.
    let figures = try extra?(s, t, versions) ?? [:]
    let extras = Dictionary(versions.compactMap { v in (figures[v.attributes["pid"]?.description ?? v.key]).map { (v.key, $0) } }, uniquingKeysWith: { a, _ in a })
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
    case .blockDevices: return "disk"
    }
}

func int(_ v: EntityVersion, _ k: String) -> Int64 { v.attributes[k]?.intValue ?? 0 }
func str(_ v: EntityVersion, _ k: String) -> String { v.attributes[k]?.description ?? "" }

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "Processes now, or as they were at --at TIME.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Include kernel threads.") var kernel = false

    func run() throws {
        let cols = [
            Column(header: "PID", attribute: "pid"), Column(header: "PPID", attribute: "ppid"),
            Column(header: "USER", attribute: "user"), Column(header: "STATE", attribute: "state"),
            Column(header: "CPU%", attribute: "cpu_percent") { $0.map { v in String(format: "%.1f", (v.doubleValue ?? 0)) } ?? "-" },
            Column(header: "RSS", attribute: "rss_bytes") { $0.flatMap(\.doubleValue).map(humanBytes) ?? "-" },
            Column(header: "START", attribute: "start_time"), Column(header: "COMMAND", attribute: "command"),
        ]
        let kernel = self.kernel
        try showEntities(.processes, columns: cols, store: store, at: at, output: output, sort: { int($0, "pid") < int($1, "pid") },
                         extra: { s, t, _ in try processFigures(s, t) }, filter: kernel ? nil : { $0.attributes["kernel_thread"] != .bool(true) })
    }
}

/// CPU % and RSS of each process at `t` from its series, keyed by pid.
func processFigures(_ s: TwinStore, _ t: Int64) throws -> [String: [String: AttributeValue]] {
    let (series, latest, previous) = try s.latestValues(at: t, lookback: 10_000,
                                                        metrics: ["hosttwin_process_cpu_seconds_total", "hosttwin_process_resident_memory_bytes"])
    var byPid: [String: [String: AttributeValue]] = [:]
    for (id, (t1, v1)) in latest {
        guard let info = series[id], let pid = info.key.labels["pid"] else { continue }
        if info.key.metric == "hosttwin_process_resident_memory_bytes" {
            byPid[pid, default: [:]]["rss_bytes"] = .double(v1)
        } else if let (t0, v0) = previous[id], t1 > t0 {
            byPid[pid, default: [:]]["cpu_percent"] = .double(max(0, (v1 - v0) / (Double(t1 - t0) / 1000) * 100))
        }
    }
    return byPid
}

struct PortsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ports", abstract: "Listening TCP and UDP sockets with their processes.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.listeningPorts, columns: [
            Column(header: "PROTO", attribute: "protocol"), Column(header: "ADDRESS", attribute: "address"),
            Column(header: "PORT", attribute: "port"), Column(header: "PID", attribute: "pid"), Column(header: "PROCESS", attribute: "process"),
        ], store: store, at: at, output: output, sort: { (str($0, "protocol"), int($0, "port"), str($0, "address")) < (str($1, "protocol"), int($1, "port"), str($1, "address")) })
    }
}

struct MountsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mounts", abstract: "Mounted file systems (all of mountinfo).")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.mounts, columns: [
            Column(header: "MOUNTPOINT", attribute: "mountpoint"), Column(header: "TYPE", attribute: "fstype"),
            Column(header: "RO", attribute: "ro"), Column(header: "DEVICE", attribute: "device"), Column(header: "OPTIONS", attribute: "options"),
        ], store: store, at: at, output: output, sort: { str($0, "mountpoint") < str($1, "mountpoint") })
    }
}

struct ServicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "systemd units (when systemd runs on the host).")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.services, columns: [
            Column(header: "UNIT", attribute: "name"), Column(header: "LOAD", attribute: "load"), Column(header: "ACTIVE", attribute: "active"),
            Column(header: "SUB", attribute: "sub"), Column(header: "DESCRIPTION", attribute: "description"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}

struct InterfacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "interfaces", abstract: "Network interfaces.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.interfaces, columns: [
            Column(header: "NAME", attribute: "name"), Column(header: "STATE", attribute: "operstate"), Column(header: "MTU", attribute: "mtu"),
            Column(header: "SPEED", attribute: "speed_mbps"), Column(header: "ADDRESS", attribute: "address"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}

struct PackagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "packages", abstract: "Installed packages.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.packages, columns: [
            Column(header: "NAME", attribute: "name"), Column(header: "VERSION", attribute: "version"), Column(header: "ARCH", attribute: "architecture"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "Logged-in user sessions.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.users, columns: [
            Column(header: "USER", attribute: "user"), Column(header: "TTY", attribute: "tty"), Column(header: "FROM", attribute: "host"),
            Column(header: "LOGIN", attribute: "login_time"), Column(header: "PID", attribute: "pid"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}

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
