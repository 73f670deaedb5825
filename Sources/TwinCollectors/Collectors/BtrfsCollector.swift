import TwinCore

/// node_exporter's btrfs collector, from sysfs (`/sys/fs/btrfs/<uuid>`): per file system its label,
/// global reserve and commit statistics, each device's size, and per block group type (data, metadata,
/// system) and RAID profile the space allocated and used and the ratio of disk space to logical space.
public final class BtrfsCollector: Collector {
    public let name = "btrfs"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("fs/btrfs")
        guard let filesystems = ctx.entries(base)?.filter({ $0.contains("-") }), !filesystems.isEmpty else { return .noData("no btrfs file systems") }
        for uuid in filesystems {
            let dir = base + "/" + uuid, l = Labels(["uuid": uuid])
            ctx.observation.add("node_btrfs_info", Labels(["label": ctx.text(dir + "/label") ?? "", "uuid": uuid]), 1)
            if let v = ctx.number(dir + "/allocation/global_rsv_size") { ctx.observation.add("node_btrfs_global_rsv_size_bytes", l, v) }
            let devices = ctx.entries(dir + "/devices") ?? []
            for device in devices {
                // sysfs sizes are in 512-byte sectors.
                if let sectors = ctx.number("\(dir)/devices/\(device)/size") {
                    ctx.observation.add("node_btrfs_device_size_bytes", Labels(["device": device, "uuid": uuid]), sectors * 512)
                }
            }
            var commits: [String: Double] = [:]
            for line in (ctx.reader.read(dir + "/commit_stats") ?? "").split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 2, let v = Double(f[1]) { commits[String(f[0])] = v }
            }
            ctx.observation.counter("node_btrfs_commits_total", l, commits["commits"] ?? 0)
            ctx.observation.counter("node_btrfs_commit_seconds_total", l, (commits["total_commit_ms"] ?? 0) / 1000)
            ctx.observation.add("node_btrfs_last_commit_seconds", l, (commits["last_commit_ms"] ?? 0) / 1000)
            ctx.observation.add("node_btrfs_max_commit_seconds", l, (commits["max_commit_ms"] ?? 0) / 1000)
            for type in ["data", "metadata", "system"] {
                let t = "\(dir)/allocation/\(type)"
                guard let entries = ctx.entries(t) else { continue }
                if let v = ctx.number(t + "/bytes_reserved") {
                    ctx.observation.add("node_btrfs_reserved_bytes", Labels(["block_group_type": type, "uuid": uuid]), v)
                }
                for mode in entries {
                    guard let size = ctx.number("\(t)/\(mode)/total_bytes") else { continue }
                    let ml = Labels(["block_group_type": type, "mode": mode, "uuid": uuid])
                    ctx.observation.add("node_btrfs_size_bytes", ml, size)
                    if let used = ctx.number("\(t)/\(mode)/used_bytes") { ctx.observation.add("node_btrfs_used_bytes", ml, used) }
                    if let ratio = Self.allocationRatio(mode, devices: devices.count) { ctx.observation.add("node_btrfs_allocation_ratio", ml, ratio) }
                }
            }
        }
        return .ok
    }

    /// Disk bytes written per logical byte under a RAID profile across `devices` devices.
    static func allocationRatio(_ mode: String, devices n: Int) -> Double? {
        switch mode {
        case "single", "raid0": return 1
        case "dup", "raid1", "raid10": return 2
        case "raid1c3": return 3
        case "raid1c4": return 4
        case "raid5": return n > 1 ? Double(n) / Double(n - 1) : nil
        case "raid6": return n > 2 ? Double(n) / Double(n - 2) : nil
        default: return nil
        }
    }
}
