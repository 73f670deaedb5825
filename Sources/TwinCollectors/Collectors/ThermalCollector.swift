import TwinCore

/// Thermal zones and cooling devices from `/sys/class/thermal` (absent on most VMs: "no data").
public final class ThermalCollector: Collector {
    public let name = "thermal"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let dir = ctx.paths.sys("class/thermal")
        guard let names = ctx.reader.list(dir), !names.isEmpty else { return .noData("no /sys/class/thermal entries") }
        var any = false
        for n in names.sorted() {
            func read(_ f: String) -> String? { ctx.reader.read("\(dir)/\(n)/\(f)").map { String($0.trimmingSuffixNewlines) } }
            if let zone = n.dropPrefixString("thermal_zone") {
                guard let type = read("type"), let temp = read("temp").flatMap(Double.init) else { continue }
                ctx.observation.add("node_thermal_zone_temp", Labels(["type": type, "zone": zone]), temp / 1000)
                any = true
            } else if let dev = n.dropPrefixString("cooling_device") {
                guard let type = read("type"), let cur = read("cur_state").flatMap(Double.init),
                      let max = read("max_state").flatMap(Double.init) else { continue }
                let l = Labels(["name": dev, "type": type])
                ctx.observation.add("node_cooling_device_cur_state", l, cur)
                ctx.observation.add("node_cooling_device_max_state", l, max)
                any = true
            }
        }
        return any ? .ok : .noData("no readable thermal zones")
    }
}

extension String {
    func dropPrefixString(_ p: String) -> String? { hasPrefix(p) ? String(dropFirst(p.count)) : nil }
}
