import TwinCore

/// node_exporter's ipvs collector: the IP Virtual Server's totals (`/proc/net/ip_vs_stats`) and each
/// backend's weight and connections (`/proc/net/ip_vs`), as kube-proxy's IPVS mode and keepalived set them up.
public final class IPVSCollector: Collector {
    public let name = "ipvs"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let statsText = ctx.reader.read(ctx.paths.proc("net/ip_vs_stats")) else { return .noData("IPVS is not loaded") }
        guard let s = parseIPVSStats(statsText) else { return .noData("unreadable /proc/net/ip_vs_stats") }
        ctx.observation.counter("node_ipvs_connections_total", .empty, s.connections)
        ctx.observation.counter("node_ipvs_incoming_packets_total", .empty, s.inPackets)
        ctx.observation.counter("node_ipvs_outgoing_packets_total", .empty, s.outPackets)
        ctx.observation.counter("node_ipvs_incoming_bytes_total", .empty, s.inBytes)
        ctx.observation.counter("node_ipvs_outgoing_bytes_total", .empty, s.outBytes)
        // Backends with the same labels (a real server behind two schedulers) are summed, as node_exporter does.
        var sums: [Labels: (weight: Double, active: Double, inactive: Double)] = [:]
        var order: [Labels] = []
        for b in parseIPVS(ctx.reader.read(ctx.paths.proc("net/ip_vs")) ?? "") {
            let l = Labels(["local_address": b.localAddress, "local_port": String(b.localPort), "local_mark": b.localMark,
                            "proto": b.proto, "remote_address": b.remoteAddress, "remote_port": String(b.remotePort)])
            if sums[l] == nil { order.append(l) }
            let old = sums[l] ?? (0, 0, 0)
            sums[l] = (old.weight + b.weight, old.active + b.activeConnections, old.inactive + b.inactiveConnections)
        }
        for l in order {
            let v = sums[l]!
            ctx.observation.add("node_ipvs_backend_weight", l, v.weight)
            ctx.observation.add("node_ipvs_backend_connections_active", l, v.active)
            ctx.observation.add("node_ipvs_backend_connections_inactive", l, v.inactive)
        }
        return .ok
    }
}
