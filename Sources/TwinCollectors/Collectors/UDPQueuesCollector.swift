import TwinCore

/// node_exporter's udp_queues collector: bytes waiting in UDP sockets' send and receive queues, over
/// IPv4 and IPv6 (`/proc/net/udp`, `/proc/net/udp6`).
public final class UDPQueuesCollector: Collector {
    public let name = "udp_queues"
    private static let labels = [("v4", "udp"), ("v6", "udp6")].map { ip, file in
        (file, Labels(["ip": ip, "queue": "tx"]), Labels(["ip": ip, "queue": "rx"]))
    }
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        for (file, tx, rx) in Self.labels {
            guard let q = ctx.reader.read(ctx.paths.proc("net/" + file)).flatMap(parseUDPQueues) else { continue }
            ctx.observation.add("node_udp_queues", tx, q.tx)
            ctx.observation.add("node_udp_queues", rx, q.rx)
            any = true
        }
        return any ? .ok : .noData("no /proc/net/udp")
    }
}
