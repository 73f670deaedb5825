import TwinCore

/// Network interfaces: counters from `/proc/net/dev`, link facts from `/sys/class/net/<dev>/`, and one
/// `interfaces` entity per device (address, operstate, MTU, speed are slow facts; counters are series).
public final class NetworkCollector: Collector {
    public let name = "network"
    private var receiveNames = netDevReceiveFields.map { "node_network_receive_\($0)_total" }
    private var transmitNames = netDevTransmitFields.map { "node_network_transmit_\($0)_total" }
    private var deviceLabels: [String: Labels] = [:]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("net/dev")) else { return .noData("/proc/net/dev missing") }
        var entities: [Entity] = []
        for dev in parseNetDev(text) {
            let labels = label(dev.device)
            for i in 0..<8 {
                ctx.observation.counter(receiveNames[i], labels, dev.receive[i])
                ctx.observation.counter(transmitNames[i], labels, dev.transmit[i])
            }
            let base = ctx.paths.sys("class/net/" + dev.device + "/")
            func attr(_ n: String) -> String? {
                ctx.reader.read(base + n).map { String($0.trimmingSuffixNewlines) }
            }
            var attrs: [String: AttributeValue] = ["name": .string(dev.device)]
            let oper = attr("operstate")
            if let oper {
                attrs["operstate"] = .string(oper)
                ctx.observation.add("node_network_up", labels, oper == "up" ? 1 : 0)
            }
            if let mtu = attr("mtu").flatMap({ Double($0) }) {
                attrs["mtu"] = .int(Int64(mtu))
                ctx.observation.add("node_network_mtu_bytes", labels, mtu)
            }
            if let speed = attr("speed").flatMap({ Double($0) }), speed >= 0 {
                attrs["speed_mbps"] = .int(Int64(speed))
                ctx.observation.add("node_network_speed_bytes", labels, speed * 1000 * 1000 / 8)
            }
            if let carrier = attr("carrier").flatMap({ Double($0) }) {
                ctx.observation.add("node_network_carrier", labels, carrier)
            }
            if let address = attr("address") { attrs["address"] = .string(address) }
            if let type = attr("type").flatMap({ Int64($0) }) { attrs["type"] = .int(type) }
            entities.append(Entity(kind: .interfaces, key: dev.device, attributes: attrs))
        }
        ctx.observation.set(.interfaces, entities)
        return .ok
    }

    private func label(_ device: String) -> Labels {
        if let l = deviceLabels[device] { return l }
        let l = Labels(["device": device])
        deviceLabels[device] = l
        return l
    }
}

extension String {
    var trimmingSuffixNewlines: Substring {
        var s = self[...]
        while s.last == "\n" || s.last == " " { s = s.dropLast() }
        return s
    }
}
