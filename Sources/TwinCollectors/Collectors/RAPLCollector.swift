import TwinCore

/// node_exporter's rapl collector: energy used per RAPL zone (`/sys/class/powercap/intel-rapl:*`), as
/// `node_rapl_<zone>_joules_total{index, path}`. Reading `energy_uj` needs root on recent kernels.
public final class RAPLCollector: Collector {
    public let name = "rapl"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/powercap")
        guard let zones = ctx.entries(base)?.filter({ $0.hasPrefix("intel-rapl:") }), !zones.isEmpty else { return .noData("no RAPL zones") }
        var any = false
        for zone in zones {
            let dir = base + "/" + zone
            guard let label = ctx.text(dir + "/name"), let microjoules = ctx.number(dir + "/energy_uj") else { continue }
            // intel-rapl:0 is package 0; intel-rapl:0:1 its sub-zone 1: the index is the last number.
            let index = zone.split(separator: ":").last.map(String.init) ?? "0"
            let metric = label.split(separator: "-").first.map(String.init) ?? label
            guard !metric.isEmpty, metric.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
            ctx.observation.counter("node_rapl_\(metric)_joules_total", Labels(["index": index, "path": dir]), microjoules / 1e6)
            any = true
        }
        return any ? .ok : .noData("RAPL energy counters are not readable")
    }
}
