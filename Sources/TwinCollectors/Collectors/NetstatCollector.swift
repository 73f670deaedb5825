import TwinCore

/// Protocol counters from `/proc/net/snmp`, `/proc/net/netstat` and `/proc/net/snmp6`, limited to the
/// fields node_exporter exports by default.
public final class NetstatCollector: Collector {
    public let name = "netstat"
    /// Per file: per header line, the metric name of each column (nil where not exported).
    private let snmpHeaders = [LineKeyCache<[String?]>(), LineKeyCache<[String?]>()]
    private let snmp6Names = LineKeyCache<String>()
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
        for (i, file) in ["net/snmp", "net/netstat"].enumerated() {
            let cache = snmpHeaders[i]
            let ok: Void? = ctx.reader.withHeldBytes(ctx.paths.proc(file)) { b in
                let s = ByteScanner(b)
                var columns: [String?] = []
                scanSNMP(s, header: { pair, line in
                    columns = cache.value(pair, line, s) {
                        var f: [Range<Int>] = []
                        s.fields(line, into: &f)
                        let proto = s.string(f[0].lowerBound..<(f[0].upperBound - 1))
                        return f.dropFirst().map { r in
                            let key = proto + "_" + s.string(r)
                            return Self.isDefaultField(key) ? "node_netstat_" + key : nil
                        }
                    } ?? []
                }) { column, _, _, v in
                    if column < columns.count, let metric = columns[column] { ctx.observation.add(metric, .empty, v, .untyped) }
                }
            }
            if ok != nil { any = true }
        }
        let six: Void? = ctx.reader.withHeldBytes(ctx.paths.proc("net/snmp6")) { b in
            let s = ByteScanner(b)
            scanKeyValueLines(s) { index, key, v in
                guard let metric = snmp6Names.value(index, key, s, {
                    guard let k = snmp6Key(s.string(key)), Self.isDefaultField(k) else { return nil }
                    return "node_netstat_" + k
                }) else { return }
                ctx.observation.add(metric, .empty, v, .untyped)
            }
        }
        if six != nil { any = true }
        return any ? .ok : .noData("no /proc/net/snmp or netstat")
    }
}
