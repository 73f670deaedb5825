import TwinCore

/// node_exporter's fibrechannel collector (`/sys/class/fc_host`): each host adapter's port facts as
/// `node_fibrechannel_info` and its statistics counters (hexadecimal in sysfs; all ones means "not
/// supported" and is left out).
public final class FibreChannelCollector: Collector {
    public let name = "fibrechannel"
    static let info = ["dev_loss_tmo", "fabric_name", "port_id", "port_name", "port_state", "port_type", "speed",
                       "supported_classes", "supported_speeds", "symbolic_name"]
    static let counters: [(file: String, metric: String)] = [
        ("dumped_frames", "dumped_frames"), ("error_frames", "error_frames"), ("fcp_packet_aborts", "fcp_packet_aborts"),
        ("invalid_crc_count", "invalid_crc"), ("invalid_tx_word_count", "invalid_tx_words"), ("link_failure_count", "link_failure"),
        ("loss_of_signal_count", "loss_of_signal"), ("loss_of_sync_count", "loss_of_sync"), ("nos_count", "nos"),
        ("rx_frames", "rx_frames"), ("rx_words", "rx_words"), ("seconds_since_last_reset", "seconds_since_last_reset"),
        ("tx_frames", "tx_frames"), ("tx_words", "tx_words"),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/fc_host")
        guard let hosts = ctx.entries(base), !hosts.isEmpty else { return .noData("no Fibre Channel hosts") }
        for host in hosts {
            let dir = base + "/" + host
            var info = ["fc_host": host]
            for f in Self.info { info[f] = ctx.text(dir + "/" + f).map(Self.withoutHexPrefix) ?? "" }
            ctx.observation.add("node_fibrechannel_info", Labels(dictionary: info), 1)
            let l = Labels(["fc_host": host])
            for c in Self.counters {
                guard let text = ctx.text("\(dir)/statistics/\(c.file)"), let v = UInt64(Self.withoutHexPrefix(text), radix: 16),
                      v != .max else { continue }
                ctx.observation.counter("node_fibrechannel_\(c.metric)_total", l, Double(v))
            }
        }
        return .ok
    }

    static func withoutHexPrefix(_ s: String) -> String { s.hasPrefix("0x") ? String(s.dropFirst(2)) : s }
}
