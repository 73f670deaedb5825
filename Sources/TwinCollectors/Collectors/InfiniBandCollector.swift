import TwinCore

/// node_exporter's infiniband collector (`/sys/class/infiniband`): each adapter's board, firmware and
/// type, and each port's state, rate and counters. Data counters count 4-byte words and are reported
/// in bytes; a counter the adapter does not provide ("N/A") is left out.
public final class InfiniBandCollector: Collector {
    public let name = "infiniband"
    /// counters/ file → (metric without `node_infiniband_`, multiplier).
    static let counters: [(file: String, metric: String, scale: Double)] = [
        ("excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", 1), ("link_downed", "link_downed_total", 1),
        ("link_error_recovery", "link_error_recovery_total", 1), ("local_link_integrity_errors", "local_link_integrity_errors_total", 1),
        ("multicast_rcv_packets", "multicast_packets_received_total", 1), ("multicast_xmit_packets", "multicast_packets_transmitted_total", 1),
        ("port_rcv_constraint_errors", "port_constraint_errors_received_total", 1),
        ("port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", 1),
        ("port_rcv_data", "port_data_received_bytes_total", 4), ("port_xmit_data", "port_data_transmitted_bytes_total", 4),
        ("port_rcv_discards", "port_discards_received_total", 1), ("port_xmit_discards", "port_discards_transmitted_total", 1),
        ("port_rcv_errors", "port_errors_received_total", 1), ("port_rcv_packets", "port_packets_received_total", 1),
        ("port_xmit_packets", "port_packets_transmitted_total", 1), ("port_xmit_wait", "port_transmit_wait_total", 1),
        ("port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", 1),
        ("port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", 1), ("symbol_error", "symbol_error_total", 1),
        ("unicast_rcv_packets", "unicast_packets_received_total", 1), ("unicast_xmit_packets", "unicast_packets_transmitted_total", 1),
        ("VL15_dropped", "vl15_dropped_total", 1),
    ]
    /// counters_ext/ file → (metric, multiplier): the 64-bit "legacy" counters of older adapters.
    static let extended: [(file: String, metric: String, scale: Double)] = [
        ("port_multicast_rcv_packets", "legacy_multicast_packets_received_total", 1),
        ("port_multicast_xmit_packets", "legacy_multicast_packets_transmitted_total", 1),
        ("port_rcv_data_64", "legacy_data_received_bytes_total", 4), ("port_xmit_data_64", "legacy_data_transmitted_bytes_total", 4),
        ("port_rcv_packets_64", "legacy_packets_received_total", 1), ("port_xmit_packets_64", "legacy_packets_transmitted_total", 1),
        ("port_unicast_rcv_packets", "legacy_unicast_packets_received_total", 1),
        ("port_unicast_xmit_packets", "legacy_unicast_packets_transmitted_total", 1),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/infiniband")
        guard let devices = ctx.entries(base), !devices.isEmpty else { return .noData("no InfiniBand devices") }
        for device in devices {
            let dir = base + "/" + device
            ctx.observation.add("node_infiniband_info", Labels([
                "device": device, "board_id": ctx.text(dir + "/board_id") ?? "",
                "firmware_version": ctx.text(dir + "/fw_ver") ?? "", "hca_type": ctx.text(dir + "/hca_type") ?? "",
            ]), 1)
            for port in ctx.entries(dir + "/ports") ?? [] {
                let p = "\(dir)/ports/\(port)", l = Labels(["device": device, "port": port])
                // "4: ACTIVE", "5: LinkUp": the number before the colon.
                func stateID(_ f: String) -> Double? { ctx.text(p + "/" + f).flatMap { $0.split(separator: ":").first.flatMap { Double($0) } } }
                if let v = stateID("state") { ctx.observation.add("node_infiniband_state_id", l, v) }
                if let v = stateID("phys_state") { ctx.observation.add("node_infiniband_physical_state_id", l, v) }
                // "40 Gb/sec (4X QDR)": gigabits per second.
                if let rate = ctx.text(p + "/rate")?.split(separator: " ").first.flatMap({ Double($0) }) {
                    ctx.observation.add("node_infiniband_rate_bytes_per_second", l, rate * 1e9 / 8)
                }
                for (sub, table) in [("counters", Self.counters), ("counters_ext", Self.extended)] {
                    for c in table {
                        guard let v = ctx.number("\(p)/\(sub)/\(c.file)") else { continue }
                        ctx.observation.counter("node_infiniband_" + c.metric, l, v * c.scale)
                    }
                }
            }
        }
        return .ok
    }
}
