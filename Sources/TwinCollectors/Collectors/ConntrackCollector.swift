import TwinCore

/// node_exporter's conntrack collector: connection-tracking entries and their limit
/// (`/proc/sys/net/netfilter`), and the per-CPU statistics of `/proc/net/stat/nf_conntrack`, summed.
public final class ConntrackCollector: Collector {
    public let name = "conntrack"
    static let stats = ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "search_restart"]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        func number(_ p: String) -> Double? { ctx.reader.read(ctx.paths.proc(p)).flatMap { Double($0.trimmingSuffixNewlines) } }
        guard let entries = number("sys/net/netfilter/nf_conntrack_count") else { return .noData("connection tracking is not loaded") }
        ctx.observation.add("node_nf_conntrack_entries", .empty, entries)
        if let limit = number("sys/net/netfilter/nf_conntrack_max") { ctx.observation.add("node_nf_conntrack_entries_limit", .empty, limit) }
        if let text = ctx.reader.read(ctx.paths.proc("net/stat/nf_conntrack")) {
            let sums = parseConntrackStat(text)
            for s in Self.stats { if let v = sums[s] { ctx.observation.add("node_nf_conntrack_stat_" + s, .empty, v) } }
        }
        return .ok
    }
}
