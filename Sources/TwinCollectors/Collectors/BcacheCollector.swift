import TwinCore

/// node_exporter's bcache collector (`/sys/fs/bcache/<uuid>`): per cache set its B-tree, congestion
/// and journal figures; per backing device its hit, miss and bypass counters, dirty data and writeback
/// rate; per cache device its errors, bytes written and priority statistics.
public final class BcacheCollector: Collector {
    public let name = "bcache"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("fs/bcache")
        guard let sets = ctx.entries(base)?.filter({ $0.contains("-") }), !sets.isEmpty else { return .noData("no bcache cache sets") }
        for uuid in sets {
            let dir = base + "/" + uuid, l = Labels(["uuid": uuid])
            func plain(_ file: String, _ metric: String, scale: Double = 1) {
                if let v = ctx.number(dir + "/" + file) { ctx.observation.add(metric, l, v * scale) }
            }
            plain("average_key_size", "node_bcache_average_key_size_sectors")
            if let v = ctx.text(dir + "/btree_cache_size").flatMap({ parseBcacheSize($0[...]) }) {
                ctx.observation.add("node_bcache_btree_cache_size_bytes", l, v)
            }
            plain("cache_available_percent", "node_bcache_cache_available_percent")
            plain("congested", "node_bcache_congested")
            plain("root_usage_percent", "node_bcache_root_usage_percent")
            plain("tree_depth", "node_bcache_tree_depth")
            plain("internal/active_journal_entries", "node_bcache_active_journal_entries")
            plain("internal/btree_nodes", "node_bcache_btree_nodes")
            // node_exporter reads this microsecond figure as nanoseconds; kept for drop-in equality.
            plain("internal/btree_read_average_duration_us", "node_bcache_btree_read_average_duration_seconds", scale: 1e-9)
            if let v = ctx.number(dir + "/internal/cache_read_races") { ctx.observation.counter("node_bcache_cache_read_races_total", l, v) }
            for device in ctx.entries(dir) ?? [] {
                if device.hasPrefix("bdev") {
                    backing(&ctx, dir + "/" + device, Labels(["backing_device": device, "uuid": uuid]))
                } else if device.hasPrefix("cache"), device.dropFirst(5).allSatisfy(\.isNumber) {
                    cache(&ctx, dir + "/" + device, Labels(["cache_device": device, "uuid": uuid]))
                }
            }
        }
        return .ok
    }

    private func backing(_ ctx: inout CollectContext, _ dir: String, _ l: Labels) {
        if let v = ctx.text(dir + "/dirty_data").flatMap({ parseBcacheSize($0[...]) }) { ctx.observation.add("node_bcache_dirty_data_bytes", l, v) }
        let total = dir + "/stats_total/"
        if let v = ctx.text(total + "bypassed").flatMap({ parseBcacheSize($0[...]) }) { ctx.observation.counter("node_bcache_bypassed_bytes_total", l, v) }
        for stat in ["cache_bypass_hits", "cache_bypass_misses", "cache_hits", "cache_miss_collisions", "cache_misses", "cache_readaheads"] {
            if let v = ctx.number(total + stat) { ctx.observation.counter("node_bcache_\(stat)_total", l, v) }
        }
        // writeback_rate_debug: "rate: 1.1M/sec", "target: 20.4G", "proportional: 427.5k", ...
        guard let debug = ctx.reader.read(dir + "/writeback_rate_debug") else { return }
        let metrics = ["rate": "node_bcache_writeback_rate", "target": "node_bcache_dirty_target_bytes",
                       "proportional": "node_bcache_writeback_rate_proportional_term",
                       "integral": "node_bcache_writeback_rate_integral_term", "change": "node_bcache_writeback_change"]
        for line in debug.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), let metric = metrics[String(line[..<colon])],
                  let v = parseBcacheSize(line[line.index(after: colon)...].trimmingSpaces) else { continue }
            ctx.observation.add(metric, l, v)
        }
    }

    private func cache(_ ctx: inout CollectContext, _ dir: String, _ l: Labels) {
        if let v = ctx.number(dir + "/io_errors") { ctx.observation.add("node_bcache_io_errors", l, v) }
        if let v = ctx.text(dir + "/metadata_written").flatMap({ parseBcacheSize($0[...]) }) {
            ctx.observation.counter("node_bcache_metadata_written_bytes_total", l, v)
        }
        if let v = ctx.text(dir + "/written").flatMap({ parseBcacheSize($0[...]) }) { ctx.observation.counter("node_bcache_written_bytes_total", l, v) }
        // priority_stats: "Unused:\t\t99%", "Metadata:\t0%", ...
        for line in (ctx.reader.read(dir + "/priority_stats") ?? "").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon], value = line[line.index(after: colon)...].filter { $0 != "\t" && $0 != " " && $0 != "%" }
            guard let v = Double(value) else { continue }
            if key == "Unused" { ctx.observation.add("node_bcache_priority_stats_unused_percent", l, v) }
            if key == "Metadata" { ctx.observation.add("node_bcache_priority_stats_metadata_percent", l, v) }
        }
    }
}
