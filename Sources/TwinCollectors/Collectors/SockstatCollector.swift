import Glibc
import TwinCore

/// Socket counts from `/proc/net/sockstat` and `sockstat6` (cheap: no socket table walk).
public final class SockstatCollector: Collector {
    public let name = "sockstat"
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        for file in ["net/sockstat", "net/sockstat6"] {
            guard let text = ctx.reader.readShared(ctx.paths.proc(file)) else { continue }
            any = true
            for (k, v) in parseSockstat(text) {
                ctx.observation.add("node_sockstat_" + k, .empty, v)
                // node_exporter also reports socket memory (given in pages) in bytes.
                if k.hasSuffix("_mem") { ctx.observation.add("node_sockstat_" + k + "_bytes", .empty, v * pageSize) }
            }
        }
        return any ? .ok : .noData("no /proc/net/sockstat")
    }
}
