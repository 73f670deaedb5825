import TwinCore

/// TCP and UDP sockets (IPv4 and IPv6): listening sockets as `listening_ports` entities and established
/// TCP connections as `connections`, each mapped to its owning process through `/proc/PID/fd`.
///
/// Reading `/proc/net/tcp` costs milliseconds on hosts with a large connection hash table even when it
/// holds two sockets, so the tables are re-read only when `/proc/net/sockstat{,6}` in-use counts change
/// (microseconds to read) or every `fullScanInterval`; the fd scan runs only when an unknown socket
/// inode appears. See docs/ARCHITECTURE.md ("Socket collection").
public final class SocketCollector: Collector {
    public let name = "sockets"
    /// The longest time between two full reads of the socket tables, in milliseconds.
    public var fullScanInterval: Int64 = 10_000

    private var lastCounts: [String: Double] = [:]
    private var lastScan: Int64 = .min
    private var owners: [UInt64: (pid: Int, name: String)] = [:]

    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let now = ctx.observation.timestamp
        var counts: [String: Double] = [:]
        for f in ["net/sockstat", "net/sockstat6"] {
            for (k, v) in parseSockstat(ctx.reader.read(ctx.paths.proc(f)) ?? "") where k.hasSuffix("_inuse") { counts[k] = v }
        }
        if counts == lastCounts, !counts.isEmpty, now - lastScan < fullScanInterval {
            return .ok // nothing to re-read: the kind keeps its previous state
        }
        lastCounts = counts
        lastScan = now
        var listening: [Entity] = []
        var connections: [Entity] = []
        var unknown = false
        var anyTable = false
        var tables: [(String, [SocketLine])] = []
        for proto in ["tcp", "tcp6", "udp", "udp6"] {
            guard let text = ctx.reader.read(ctx.paths.proc("net/" + proto)) else { continue }
            anyTable = true
            let rows = parseSocketTable(text)
            tables.append((proto, rows))
            for r in rows where r.inode != 0 && owners[r.inode] == nil { unknown = true }
        }
        guard anyTable else { return .noData("no /proc/net/tcp or udp") }
        if unknown { owners = scanSocketOwners(ctx) }
        for (proto, rows) in tables {
            let isTCP = proto.hasPrefix("tcp")
            let family = proto.hasSuffix("6") ? "ipv6" : "ipv4"
            let p = isTCP ? "tcp" : "udp"
            for r in rows {
                let owner = owners[r.inode]
                let isListen = isTCP ? r.state == 10 : (r.state == 7 && r.remotePort == 0)
                if isListen {
                    let key = "\(p)/\(r.localAddress)/\(r.localPort)"
                    var attrs: [String: AttributeValue] = [
                        "protocol": .string(p), "family": .string(family), "address": .string(r.localAddress),
                        "port": .int(Int64(r.localPort)), "uid": .int(Int64(r.uid)),
                        "pid": owner.map { .int(Int64($0.pid)) } ?? .null,
                        "process": owner.map { .string($0.name) } ?? .null,
                    ]
                    attrs["inode"] = .int(Int64(r.inode))
                    listening.append(Entity(kind: .listeningPorts, key: key, attributes: attrs))
                } else if isTCP, r.state == 1 {
                    let key = "tcp/\(r.localAddress):\(r.localPort)/\(r.remoteAddress):\(r.remotePort)"
                    connections.append(Entity(kind: .connections, key: key, attributes: [
                        "protocol": .string(p), "family": .string(family),
                        "local_address": .string(r.localAddress), "local_port": .int(Int64(r.localPort)),
                        "remote_address": .string(r.remoteAddress), "remote_port": .int(Int64(r.remotePort)),
                        "state": .string(tcpStateNames[r.state]),
                        "pid": owner.map { .int(Int64($0.pid)) } ?? .null,
                        "process": owner.map { .string($0.name) } ?? .null,
                    ]))
                }
            }
        }
        // Two sockets may share a key (SO_REUSEPORT): keep one entity per key, the lowest pid.
        ctx.observation.set(.listeningPorts, dedupe(listening))
        ctx.observation.set(.connections, dedupe(connections))
        ctx.observation.add("hosttwin_listening_sockets", .empty, Double(listening.count))
        ctx.observation.add("hosttwin_tcp_established_connections", .empty, Double(connections.count))
        return .ok
    }

    private func dedupe(_ list: [Entity]) -> [Entity] {
        var byKey: [String: Entity] = [:]
        for e in list {
            if let old = byKey[e.key], (old.attributes["pid"]?.intValue ?? .max) <= (e.attributes["pid"]?.intValue ?? .max) { continue }
            byKey[e.key] = e
        }
        return Array(byKey.values)
    }

    /// Maps socket inodes to the process holding them by reading every `/proc/PID/fd/*` link.
    private func scanSocketOwners(_ ctx: CollectContext) -> [UInt64: (pid: Int, name: String)] {
        var out: [UInt64: (pid: Int, name: String)] = [:]
        for pidName in ctx.reader.list(ctx.paths.proc) ?? [] {
            guard let pid = Int(pidName) else { continue }
            let fdDir = ctx.paths.proc + "/" + pidName + "/fd"
            guard let fds = ctx.reader.list(fdDir), !fds.isEmpty else { continue }
            var comm: String?
            for fd in fds {
                guard let target = ctx.reader.readLink(fdDir + "/" + fd), target.hasPrefix("socket:["),
                      let inode = UInt64(target.dropFirst(8).dropLast()) else { continue }
                if comm == nil {
                    comm = ctx.reader.read(ctx.paths.proc + "/" + pidName + "/comm").map { String($0.trimmingSuffixNewlines) } ?? "?"
                }
                if out[inode] == nil || pid < out[inode]!.pid { out[inode] = (pid, comm!) }
            }
        }
        return out
    }
}
