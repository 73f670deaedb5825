import TwinCore

/// `/proc/vmstat`, the fields node_exporter exports by default (`oom_kill`, `pgpg*`, `pswp*`, `pg*fault*`).
public final class VMStatCollector: Collector {
    public let name = "vmstat"
    public init() {}

    static func isDefaultField(_ name: String) -> Bool {
        name.hasPrefix("oom_kill") || name.hasPrefix("pgpg") || name.hasPrefix("pswp")
            || (name.hasPrefix("pg") && name.contains("fault"))
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("vmstat")) else { return .noData("vmstat missing") }
        for (k, v) in parseKeyValueLines(text) where Self.isDefaultField(k) {
            ctx.observation.add("node_vmstat_" + k, .empty, v, .untyped)
        }
        return .ok
    }
}
