import TwinCore

/// `/proc/meminfo` as node_exporter's `node_memory_*` families.
public final class MemoryCollector: Collector {
    public let name = "memory"
    private var names: [String: String] = [:]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("meminfo")) else { return .noData("meminfo missing") }
        let fields = parseMeminfo(text)
        for f in fields {
            ctx.observation.add(metricName(f), .empty, f.value)
        }
        return fields.isEmpty ? .noData("meminfo empty") : .ok
    }

    private func metricName(_ f: MeminfoField) -> String {
        let cacheKey = f.isBytes ? f.name : f.name + "#"
        if let n = names[cacheKey] { return n }
        let n = "node_memory_" + f.name + (f.isBytes ? "_bytes" : "")
        names[cacheKey] = n
        return n
    }
}
