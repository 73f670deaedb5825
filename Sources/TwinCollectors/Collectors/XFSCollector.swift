import TwinCore

/// node_exporter's xfs collector: per XFS file system (`/sys/fs/xfs/<device>/stats/stats`), extent
/// and block allocation, B-tree, block mapping, directory, inode, vnode and read/write call counters.
public final class XFSCollector: Collector {
    public let name = "xfs"
    /// Section of the stats file → the metric of each of its leading counters (nil: not exported).
    static let sections: [(section: String, metrics: [String?])] = [
        ("extent_alloc", ["extent_allocation_extents_allocated", "extent_allocation_blocks_allocated",
                          "extent_allocation_extents_freed", "extent_allocation_blocks_freed"]),
        ("abt", ["allocation_btree_lookups", "allocation_btree_compares", "allocation_btree_records_inserted",
                 "allocation_btree_records_deleted"]),
        ("blk_map", ["block_mapping_reads", "block_mapping_writes", "block_mapping_unmaps", "block_mapping_extent_list_insertions",
                     "block_mapping_extent_list_deletions", "block_mapping_extent_list_lookups", "block_mapping_extent_list_compares"]),
        ("bmbt", ["block_map_btree_lookups", "block_map_btree_compares", "block_map_btree_records_inserted",
                  "block_map_btree_records_deleted"]),
        ("dir", ["directory_operation_lookup", "directory_operation_create", "directory_operation_remove",
                 "directory_operation_getdents"]),
        ("ig", ["inode_operation_attempts", "inode_operation_found", "inode_operation_recycled", "inode_operation_missed",
                "inode_operation_duplicates", "inode_operation_reclaims", "inode_operation_attribute_changes"]),
        ("rw", ["write_calls", "read_calls"]),
        ("vnodes", ["vnode_active", "vnode_allocate", "vnode_get", "vnode_hold", "vnode_release", "vnode_reclaim", "vnode_remove"]),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("fs/xfs")
        guard let devices = ctx.entries(base)?.filter({ $0 != "stats" }), !devices.isEmpty else { return .noData("no XFS file systems") }
        var any = false
        for device in devices {
            guard let text = ctx.reader.read("\(base)/\(device)/stats/stats") else { continue }
            let stats = parseXFSStats(text), l = Labels(["device": device])
            for (section, metrics) in Self.sections {
                guard let values = stats[section] else { continue }
                for (metric, value) in zip(metrics, values) {
                    if let metric { ctx.observation.counter("node_xfs_\(metric)_total", l, value) }
                }
            }
            any = true
        }
        return any ? .ok : .noData("no readable XFS statistics")
    }
}
