import TwinCore

/// Network interfaces: counters from `/proc/net/dev`, link facts from `/sys/class/net/<dev>/`, and one
/// `interfaces` entity per device. The link state (operstate) is read every tick; slow facts (MTU, speed,
/// carrier, MAC address, type) every `factsInterval` and whenever the operstate changes.
public final class NetworkCollector: Collector {
    public let name = "network"
    public var factsInterval: Int64 = 30_000
    private let receiveNames = netDevReceiveFields.map { "node_network_receive_\($0)_total" }
    private let transmitNames = netDevTransmitFields.map { "node_network_transmit_\($0)_total" }
    private let devices = LineKeyCache<Device>()

    final class Device {
        let name: String
        let labels: Labels
        let base: String
        /// The `interfaces` entity's attributes: the slow facts and the operstate, built when either is
        /// read anew, so a steady interface hands over the same dictionary and the state tracker compares
        /// it by storage.
        var attributes: [String: AttributeValue] = [:]
        var mtu: Double?
        var speed: Double?
        var carrier: Double?
        var operstate: String?
        /// The operstate file's bytes at the last read: a steady link costs a compare, not a string.
        var operstateBytes: [UInt8] = []
        let operstatePath: String
        /// node_exporter's netclass figures (`node_network_flags`, `..._iface_id`, ...) and info labels.
        var classValues: [(String, Double, MetricType)] = []
        var info: Labels?
        let nohandlerPath: String
        /// `rx_nohandler` and when it was read (every 5 s: a counter that rarely moves).
        var nohandler: (value: Double, read: Int64)?
        var factsRead: Int64?
        init(_ name: String, sys: String) {
            self.name = name
            labels = Labels(["device": name])
            base = sys + "/class/net/" + name + "/"
            nohandlerPath = base + "statistics/rx_nohandler"
            operstatePath = base + "operstate"
        }

        /// The link state, read through a held descriptor at every tick; nil when unreadable.
        func readOperstate(_ reader: FileReader) -> String? {
            reader.withHeldBytes(operstatePath) { b -> String in
                if let known = operstate, b.elementsEqual(operstateBytes) { return known }
                operstateBytes = Array(b)
                return String(String(decoding: b, as: UTF8.self).trimmingSuffixNewlines)
            }
        }
    }

    /// sysfs file, node_exporter metric (after `node_network_`), type: its netclass collector's figures.
    static let classFiles: [(String, String, MetricType)] = [
        ("addr_assign_type", "address_assign_type", .gauge), ("carrier_changes", "carrier_changes_total", .counter),
        ("carrier_up_count", "carrier_up_changes_total", .counter), ("carrier_down_count", "carrier_down_changes_total", .counter),
        ("dev_id", "device_id", .gauge), ("dormant", "dormant", .gauge), ("flags", "flags", .gauge), ("ifindex", "iface_id", .gauge),
        ("iflink", "iface_link", .gauge), ("link_mode", "iface_link_mode", .gauge), ("name_assign_type", "name_assign_type", .gauge),
        ("netdev_group", "net_dev_group", .gauge), ("type", "protocol_type", .gauge), ("tx_queue_len", "transmit_queue_length", .gauge),
    ]

    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var entities: [Entity] = []
        var current: [Device] = []
        let now = ctx.observation.timestamp
        let found: Void? = ctx.reader.withHeldBytes(ctx.paths.proc("net/dev")) { b in
            let s = ByteScanner(b)
            scanNetDev(s) { index, name, n in
                let dev = devices.value(index, name, s) { Device(s.string(name), sys: ctx.paths.sys) }!
                current.append(dev)
                for i in 0..<8 {
                    ctx.observation.counter(receiveNames[i], dev.labels, n[i])
                    ctx.observation.counter(transmitNames[i], dev.labels, n[8 + i])
                }
            }
        }
        guard found != nil else { return .noData("/proc/net/dev missing") }
        let reader = ctx.reader
        func attr(_ d: Device, _ n: String) -> String? { reader.read(d.base + n).map { String($0.trimmingSuffixNewlines) } }
        // A file read at every tick (or every few): its descriptor is held.
        func heldAttr(_ path: String) -> String? { reader.readHeld(path).map { String($0.trimmingSuffixNewlines) } }
        // A name listed twice (a malformed file) counts once; a handful of devices, so no set is built.
        for (i, dev) in current.enumerated() where !current[..<i].contains(where: { $0.name == dev.name }) {
            let oper = dev.readOperstate(reader)
            if oper != dev.operstate || (dev.factsRead.map({ now - $0 >= factsInterval || now < $0 }) ?? true) {
                dev.operstate = oper
                dev.carrier = attr(dev, "carrier").flatMap(Double.init)
                dev.factsRead = now
                var f: [String: AttributeValue] = ["name": .string(dev.name)]
                dev.mtu = attr(dev, "mtu").flatMap(Double.init)
                if let mtu = dev.mtu { f["mtu"] = .int(Int64(saturating: mtu)) }
                // node_exporter 1.5 reports an unknown speed (-1) as it reads it: -125000 bytes/s.
                dev.speed = attr(dev, "speed").flatMap(Double.init)
                if let speed = dev.speed, speed >= 0 { f["speed_mbps"] = .int(Int64(saturating: speed)) }
                if let address = attr(dev, "address") { f["address"] = .string(address) }
                if let type = attr(dev, "type").flatMap({ Int64($0) }) { f["type"] = .int(type) }
                if let oper { f["operstate"] = .string(oper) }
                dev.attributes = f
                dev.classValues = Self.classFiles.compactMap { file, metric, type in
                    guard let text = attr(dev, file) else { return nil }
                    let v = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16).map { Double($0) } : Double(text)
                    return v.map { ("node_network_" + metric, $0, type) }
                }
                let flags = attr(dev, "flags").flatMap { UInt64($0.dropFirst(2), radix: 16) }
                dev.info = Labels(dictionary: [
                    "device": dev.name, "address": attr(dev, "address") ?? "", "broadcast": attr(dev, "broadcast") ?? "",
                    "duplex": attr(dev, "duplex") ?? "", "ifalias": attr(dev, "ifalias") ?? "", "operstate": oper ?? "",
                    "adminstate": flags.map { $0 & 1 != 0 ? "up" : "down" } ?? "",
                ])
            }
            for (metric, v, type) in dev.classValues { ctx.observation.add(metric, dev.labels, v, type) }
            if let info = dev.info { ctx.observation.add("node_network_info", info, 1) }
            if dev.nohandler.map({ now - $0.read >= 5_000 || now < $0.read }) ?? true {
                dev.nohandler = heldAttr(dev.nohandlerPath).flatMap(Double.init).map { ($0, now) }
            }
            if let n = dev.nohandler { ctx.observation.counter("node_network_receive_nohandler_total", dev.labels, n.value) }
            if let mtu = dev.mtu { ctx.observation.add("node_network_mtu_bytes", dev.labels, mtu) }
            if let speed = dev.speed { ctx.observation.add("node_network_speed_bytes", dev.labels, speed * 1000 * 1000 / 8) }
            if let oper { ctx.observation.add("node_network_up", dev.labels, oper == "up" ? 1 : 0) }
            if let carrier = dev.carrier { ctx.observation.add("node_network_carrier", dev.labels, carrier) }
            entities.append(Entity(kind: .interfaces, key: dev.name, attributes: dev.attributes))
        }
        ctx.observation.set(.interfaces, entities)
        return .ok
    }
}

extension String {
    var trimmingSuffixNewlines: Substring {
        var s = self[...]
        while s.last == "\n" || s.last == " " { s = s.dropLast() }
        return s
    }
}
