import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "Processes now, or as they were at --at TIME.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Include kernel threads.") var kernel = false
    @Flag(help: "The process tree: each process under its parent, with user and command (forensics: `ps --at T --tree`).") var tree = false

    func run() throws {
        if tree { try printTree(); return }
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

extension PsCommand {
    /// One process of the tree, with its children (JSON form of `--tree`).
    struct Node: Encodable {
        var pid: Int64
        var user: String
        var command: String
        var start: String?
        var host: String?
        var children: [Node]
    }

    /// The processes at `--at` as a tree by parent pid: each line indented under its parent; a process whose
    /// parent is not there (init's children, or an orphan) starts a tree of its own.
    func printTree() throws {
        let t = try parseTime(at.at, "--at")
        let versions = try store.openForReading().state(at: t, kinds: [.processes]).filter { v in
            (at.host.map { v.attributes["host"] == .string($0) } ?? true) && (kernel || v.attributes["kernel_thread"] != .bool(true))
        }
        struct Key: Hashable { var host: String?; var pid: Int64 }
        func key(_ v: EntityVersion, _ attr: String) -> Key? { v.attributes[attr]?.intValue.map { Key(host: v.attributes["host"]?.description, pid: $0) } }
        var byKey: [Key: EntityVersion] = [:]
        for v in versions { if let k = key(v, "pid") { byKey[k] = v } }
        var children: [Key: [Key]] = [:], roots: [Key] = []
        for (k, v) in byKey {
            if let parent = key(v, "ppid"), parent != k, byKey[parent] != nil { children[parent, default: []].append(k) } else { roots.append(k) }
        }
        let order: (Key, Key) -> Bool = { ($0.host ?? "", $0.pid) < ($1.host ?? "", $1.pid) }
        func node(_ k: Key, depth: Int) -> Node {
            let v = byKey[k]!
            let kids = depth < 64 ? (children[k] ?? []).sorted(by: order).map { node($0, depth: depth + 1) } : []
            return Node(pid: k.pid, user: v.attributes["user"]?.description ?? "-", command: v.attributes["command"]?.description ?? v.attributes["name"]?.description ?? "-",
                        start: v.attributes["start_time"]?.description, host: k.host, children: kids)
        }
        let forest = roots.sorted(by: order).map { node($0, depth: 0) }
        if output.json { try printJSON(forest); return }
        if forest.isEmpty { print("no processes at \(TwinTime.rfc3339(t))"); return }
        var lines: [[String]] = []
        func walk(_ n: Node, _ prefix: String, _ last: Bool, _ top: Bool) {
            let branch = top ? "" : prefix + (last ? "└─ " : "├─ ")
            lines.append([(n.host.map { $0 + " " } ?? "") + String(n.pid), n.user, n.start ?? "-", branch + n.command])
            let next = top ? "" : prefix + (last ? "   " : "│  ")
            for (i, c) in n.children.enumerated() { walk(c, next, i == n.children.count - 1, false) }
        }
        for r in forest { walk(r, "", true, true) }
        printTable(["PID", "USER", "START", "COMMAND"], lines)
    }
}

/// CPU % and RSS of each process at `t` from its series, keyed by pid (`HOST/pid` at a hub).
func processFigures(_ s: TwinStore, _ t: Int64) throws -> [String: [String: AttributeValue]] {
    let (series, latest, previous) = try s.latestValues(at: t, lookback: latestValuesLookback,
                                                        metrics: ["hosttwin_process_cpu_seconds_total", "hosttwin_process_resident_memory_bytes"])
    var byPid: [String: [String: AttributeValue]] = [:]
    for (id, (t1, v1)) in latest {
        guard let info = series[id], let label = info.key.labels["pid"] else { continue }
        let pid = info.key.labels["host"].map { $0 + "/" + label } ?? label
        if info.key.metric == "hosttwin_process_resident_memory_bytes" {
            byPid[pid, default: [:]]["rss_bytes"] = .double(v1)
        } else if let (t0, v0) = previous[id], t1 > t0 {
            byPid[pid, default: [:]]["cpu_percent"] = .double(max(0, (v1 - v0) / (Double(t1 - t0) / 1000) * 100))
        }
    }
    return byPid
}
