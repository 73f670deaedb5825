import TwinCore

/// node_exporter's arp collector: `node_arp_entries`, the neighbour table's entries per device
/// (`/proc/net/arp`).
public final class ARPCollector: Collector {
    public let name = "arp"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("net/arp")) else { return .noData("no /proc/net/arp") }
        for (device, n) in parseARPEntries(text) { ctx.observation.add("node_arp_entries", Labels(["device": device]), Double(n)) }
        return .ok
    }
}
