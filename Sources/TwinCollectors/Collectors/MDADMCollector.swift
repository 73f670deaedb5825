import TwinCore

/// node_exporter's mdadm collector: software RAID arrays of `/proc/mdstat`: state, disks by state,
/// disks required, blocks and blocks in sync; from `/sys/block/md*/md`, member disks and degradation.
public final class MDADMCollector: Collector {
    public let name = "mdadm"
    static let states = ["active", "inactive", "recovering", "resync", "check"]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        // sysfs: configured member disks and whether the array runs degraded (a RAID 0 has no such file: 0).
        let block = ctx.paths.sys("block")
        for device in ctx.entries(block)?.filter({ $0.hasPrefix("md") }) ?? [] {
            guard let disks = ctx.number("\(block)/\(device)/md/raid_disks") else { continue }
            let l = Labels(["device": device])
            ctx.observation.add("node_md_raid_disks", l, disks)
            ctx.observation.add("node_md_degraded", l, ctx.number("\(block)/\(device)/md/degraded") ?? 0)
        }
        guard let text = ctx.reader.read(ctx.paths.proc("mdstat")) else { return .noData("no /proc/mdstat (md not loaded)") }
        let devices = parseMDStat(text)
        guard !devices.isEmpty else { return .noData("no md arrays") }
        for d in devices {
            let l = Labels(["device": d.name])
            for s in Self.states {
                ctx.observation.add("node_md_state", Labels(["device": d.name, "state": s]), d.state == s ? 1 : 0)
            }
            for (s, v) in [("active", d.disksActive), ("failed", d.disksFailed), ("spare", d.disksSpare)] {
                ctx.observation.add("node_md_disks", Labels(["device": d.name, "state": s]), v)
            }
            ctx.observation.add("node_md_disks_required", l, d.disksRequired)
            ctx.observation.add("node_md_blocks", l, d.blocks)
            ctx.observation.add("node_md_blocks_synced", l, d.blocksSynced)
        }
        return .ok
    }
}
