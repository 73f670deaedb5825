import TwinCore

/// `/proc/loadavg`: node_load1, node_load5, node_load15.
public final class LoadCollector: Collector {
    public let name = "load"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let parsed = ctx.reader.withHeldBytes(ctx.paths.proc("loadavg"), { parseLoadavg($0) }) else { return .noData("loadavg missing") }
        guard let (a, b, c) = parsed else { return .noData("loadavg unreadable") }
        ctx.observation.add("node_load1", .empty, a)
        ctx.observation.add("node_load5", .empty, b)
        ctx.observation.add("node_load15", .empty, c)
        return .ok
    }
}
