import TwinCore

/// `/proc/meminfo` as node_exporter's `node_memory_*` families.
public final class MemoryCollector: Collector {
    public let name = "memory"
    private let names = LineKeyCache<String>()
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let n: Int? = ctx.reader.withHeldBytes(ctx.paths.proc("meminfo")) { b in
            let s = ByteScanner(b)
            var count = 0
            scanMeminfo(s) { index, key, v, isBytes in
                let metric = names.value(index, key, s) { "node_memory_" + meminfoName(s.string(key)) + (isBytes ? "_bytes" : "") }!
                ctx.observation.add(metric, .empty, v)
                count += 1
            }
            return count
        }
        guard let n else { return .noData("meminfo missing") }
        return n == 0 ? .noData("meminfo empty") : .ok
    }
}
