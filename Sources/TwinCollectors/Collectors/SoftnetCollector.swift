import TwinCore

/// node_exporter's softnet collector: per-CPU packet processing of the network stack
/// (`/proc/net/softnet_stat`): packets processed, dropped, squeezed out of a budget, RPS and flow-limit
/// counts, and the backlog's length.
public final class SoftnetCollector: Collector {
    public let name = "softnet"
    private var labels: [Labels] = []
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("net/softnet_stat")) else { return .noData("no /proc/net/softnet_stat") }
        for line in parseSoftnet(text) {
            while labels.count <= line.cpu && labels.count < 65_536 { labels.append(Labels(["cpu": String(labels.count)])) }
            guard line.cpu < labels.count else { continue }
            let l = labels[line.cpu]
            ctx.observation.counter("node_softnet_processed_total", l, line.processed)
            ctx.observation.counter("node_softnet_dropped_total", l, line.dropped)
            ctx.observation.counter("node_softnet_times_squeezed_total", l, line.timeSqueezed)
            ctx.observation.counter("node_softnet_cpu_collision_total", l, line.cpuCollision)
            ctx.observation.counter("node_softnet_received_rps_total", l, line.receivedRPS)
            ctx.observation.counter("node_softnet_flow_limit_count_total", l, line.flowLimitCount)
            ctx.observation.add("node_softnet_backlog_len", l, line.backlogLength)
        }
        return .ok
    }
}
