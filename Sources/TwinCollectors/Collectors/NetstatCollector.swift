import TwinCore

/// Protocol counters from `/proc/net/snmp`, `/proc/net/netstat` and `/proc/net/snmp6`, limited to the
/// fields node_exporter exports by default.
public final class NetstatCollector: Collector {
    public let name = "netstat"
    private var accepted: [String: String?] = [:]
    public init() {}

    /// node_exporter's default `--collector.netstat.fields`.
    static func isDefaultField(_ key: String) -> Bool {
        if key.hasSuffix("_InErrors") || key.hasSuffix("_InErrs") { return true }
        if key == "Ip_Forwarding" { return true }
        if ["Ip6_InOctets", "Ip6_OutOctets", "IpExt_InOctets", "IpExt_OutOctets"].contains(key) { return true }
        if ["Icmp_InMsgs", "Icmp_OutMsgs", "Icmp6_InMsgs", "Icmp6_OutMsgs"].contains(key) { return true }
        if key.hasPrefix("TcpExt_Listen") || key.hasPrefix("TcpExt_Syncookies") { return true }
        if ["TcpExt_TCPSynRetrans", "TcpExt_TCPTimeouts", "TcpExt_TCPOFOQueue", "TcpExt_TCPRcvQDrop"].contains(key) { return true }
        if ["Tcp_ActiveOpens", "Tcp_InSegs", "Tcp_OutSegs", "Tcp_OutRsts", "Tcp_PassiveOpens", "Tcp_RetransSegs", "Tcp_CurrEstab"].contains(key) { return true }
        for p in ["Udp_", "Udp6_"] {
            for f in ["InDatagrams", "OutDatagrams", "NoPorts", "RcvbufErrors", "SndbufErrors"] where key == p + f { return true }
        }
        return false
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        for (file, parse) in [("net/snmp", parseSNMP), ("net/netstat", parseSNMP), ("net/snmp6", parseSNMP6)] {
            guard let text = ctx.reader.read(ctx.paths.proc(file)) else { continue }
            any = true
            for (k, v) in parse(text) {
                if let name = metricName(k) { ctx.observation.add(name, .empty, v, .untyped) }
            }
        }
        return any ? .ok : .noData("no /proc/net/snmp or netstat")
    }

    private func metricName(_ key: String) -> String? {
        if let cached = accepted[key] { return cached }
        let n: String? = Self.isDefaultField(key) ? "node_netstat_" + key : nil
        accepted[key] = n
        return n
    }
}
