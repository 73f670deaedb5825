import TwinCore

/// node_exporter's nvme collector (`/sys/class/nvme`): each controller's model, serial, firmware and
/// state, and each namespace's size, capacity, use, block size and ANA state.
public final class NVMeCollector: Collector {
    public let name = "nvme"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/nvme")
        guard let controllers = ctx.entries(base), !controllers.isEmpty else { return .noData("no NVMe controllers") }
        for device in controllers {
            let dir = base + "/" + device
            var info = ["device": device]
            for (file, label) in [("cntlid", "cntlid"), ("firmware_rev", "firmware_revision"), ("model", "model"), ("serial", "serial"), ("state", "state")] {
                if let v = ctx.text(dir + "/" + file) { info[label] = String(v[...].trimmingSpaces) }
            }
            ctx.observation.add("node_nvme_info", Labels(dictionary: info), 1)
            for ns in ctx.entries(dir) ?? [] where ns.hasPrefix(device + "n") {
                let nsid = String(ns.dropFirst(device.count + 1)), nsDir = dir + "/" + ns
                guard !nsid.isEmpty, nsid.allSatisfy(\.isNumber) else { continue }
                let l = Labels(["device": device, "nsid": nsid])
                let blockSize = ctx.number(nsDir + "/queue/logical_block_size") ?? 512
                if let size = ctx.number(nsDir + "/size") {
                    ctx.observation.add("node_nvme_namespace_size_bytes", l, size * blockSize)
                    ctx.observation.add("node_nvme_namespace_capacity_bytes", l, size * blockSize)
                }
                if let used = ctx.number(nsDir + "/nuse") { ctx.observation.add("node_nvme_namespace_used_bytes", l, used * blockSize) }
                ctx.observation.add("node_nvme_namespace_logical_block_size_bytes", l, blockSize)
                if let ana = ctx.text(nsDir + "/ana_state") {
                    ctx.observation.add("node_nvme_namespace_info", Labels(["device": device, "nsid": nsid, "ana_state": ana]), 1)
                }
            }
        }
        return .ok
    }
}
