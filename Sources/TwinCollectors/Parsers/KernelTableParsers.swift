/// Parsers of small kernel tables node_exporter reads by default: the neighbour table, softnet
/// statistics, connection-tracking statistics, UDP socket queues. Pure functions over the text; a
/// malformed line is skipped, never fatal.

/// `/proc/net/arp`: the number of complete entries per device, in the order devices first appear.
public func parseARPEntries(_ text: String) -> [(device: String, entries: Int)] {
    var counts: [String: Int] = [:]
    var order: [String] = []
    for line in lines(text).dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        // IP address, HW type, Flags, HW address, Mask, Device
        guard f.count >= 6 else { continue }
        let device = String(f[5])
        if counts[device] == nil { order.append(device) }
        counts[device, default: 0] += 1
    }
    return order.map { ($0, counts[$0]!) }
}

/// One CPU's line of `/proc/net/softnet_stat`.
public struct SoftnetLine: Sendable, Equatable {
    /// The CPU: the 13th column where the kernel prints it (5.10+), else the line's index.
    public var cpu: Int
    public var processed: Double
    public var dropped: Double
    public var timeSqueezed: Double
    public var cpuCollision: Double
    public var receivedRPS: Double
    public var flowLimitCount: Double
    public var backlogLength: Double
}

/// `/proc/net/softnet_stat`: hexadecimal columns per CPU (processed, dropped, time_squeeze, five
/// unused, cpu_collision, received_rps, flow_limit_count, then backlog length and CPU index on newer
/// kernels). Lines with fewer than the 9 columns of the oldest format, or a field that is not hex, are skipped.
public func parseSoftnet(_ text: String) -> [SoftnetLine] {
    var out: [SoftnetLine] = []
    for (index, line) in lines(text).enumerated() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 9 else { continue }
        let v = f.map { UInt64($0, radix: 16) }
        guard !v.contains(nil) else { continue }
        func col(_ i: Int) -> Double { i < v.count ? Double(v[i]!) : 0 }
        out.append(SoftnetLine(cpu: v.count >= 13 ? Int(clamping: v[12]!) : index, processed: col(0), dropped: col(1), timeSqueezed: col(2),
                               cpuCollision: col(8), receivedRPS: col(9), flowLimitCount: col(10), backlogLength: col(11)))
    }
    return out
}

/// `/proc/net/stat/nf_conntrack`: per-CPU hexadecimal counters under a header row, summed over CPUs,
/// by column name (`found`, `invalid`, `ignore`, `insert`, `insert_failed`, `drop`, `early_drop`,
/// `search_restart`, ...). A row with another number of columns than the header, or a non-hex field, is skipped.
public func parseConntrackStat(_ text: String) -> [String: Double] {
    let all = lines(text)
    guard let header = all.first?.split(separator: " ", omittingEmptySubsequences: true), !header.isEmpty else { return [:] }
    var sums = [Double](repeating: 0, count: header.count)
    var rows = 0
    for line in all.dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count == header.count else { continue }
        let v = f.map { UInt64($0, radix: 16) }
        guard !v.contains(nil) else { continue }
        for i in v.indices { sums[i] += Double(v[i]!) }
        rows += 1
    }
    guard rows > 0 else { return [:] }
    var out: [String: Double] = [:]
    for (i, name) in header.enumerated() { out[String(name)] = sums[i] }
    return out
}

/// `/proc/net/udp` or `udp6`: the bytes queued for sending and receiving, summed over sockets
/// (`tx_queue:rx_queue`, hexadecimal, the fifth column). Nil for an empty file.
public func parseUDPQueues(_ text: String) -> (tx: Double, rx: Double)? {
    let all = lines(text)
    guard !all.isEmpty else { return nil }
    var tx = 0.0, rx = 0.0
    for line in all.dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 5, let colon = f[4].firstIndex(of: ":"),
              let t = UInt64(f[4][..<colon], radix: 16), let r = UInt64(f[4][f[4].index(after: colon)...], radix: 16) else { continue }
        tx += Double(t)
        rx += Double(r)
    }
    return (tx, rx)
}

/// The numeric `major.minor` of an os-release `VERSION_ID` ("12" → 12, "22.04" → 22.04, "11.6.1" → 11.6),
/// as node_exporter's `node_os_version`; nil when it does not start with a number.
public func osVersionNumber(_ versionID: String) -> Double? {
    let parts = versionID.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
    guard let major = parts.first, !major.isEmpty, major.allSatisfy(\.isNumber) else { return nil }
    if parts.count > 1, !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber) { return Double(major + "." + parts[1]) }
    return Double(major)
}

/// One CPU's line of `/proc/schedstat`: time spent running and waiting to run (nanoseconds), and the
/// number of time slices run.
public struct SchedstatLine: Sendable, Equatable {
    public var cpu: String
    public var runningNanoseconds: Double
    public var waitingNanoseconds: Double
    public var timeslices: Double
}

/// `/proc/schedstat` (version 15): the last three fields of each `cpuN` line. Domain lines and lines
/// with fewer than nine fields or non-numeric fields are skipped.
public func parseSchedstat(_ text: String) -> [SchedstatLine] {
    var out: [SchedstatLine] = []
    for line in lines(text) where line.hasPrefix("cpu") {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 10, let running = Double(f[7]), let waiting = Double(f[8]), let slices = Double(f[9]) else { continue }
        let cpu = f[0].dropFirst(3)
        guard !cpu.isEmpty, cpu.allSatisfy(\.isNumber) else { continue }
        out.append(SchedstatLine(cpu: String(cpu), runningNanoseconds: running, waitingNanoseconds: waiting, timeslices: slices))
    }
    return out
}

/// A kernel CPU list (`/sys/devices/system/cpu/isolated`, `online`): `0-3,8,10-11` → [0,1,2,3,8,10,11].
/// Nil when a part is not a number or a range; ranges are capped at 65,536 CPUs.
public func parseCPUList(_ text: String) -> [Int]? {
    var out: [Int] = []
    for part in text.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count <= 2, let low = Int(bounds[0]), let high = Int(bounds.last!), low >= 0, low <= high, high < 65_536 else { return nil }
        out.append(contentsOf: low...high)
    }
    return out
}

/// One real server (backend) of a virtual service in `/proc/net/ip_vs`.
public struct IPVSBackend: Sendable, Equatable {
    public var proto: String
    /// The virtual service's address and port; empty and 0 for a firewall-mark service.
    public var localAddress: String
    public var localPort: Int
    /// The firewall mark of an `FWM` service (hexadecimal as the kernel writes it), else empty.
    public var localMark: String
    public var remoteAddress: String
    public var remotePort: Int
    public var weight: Double
    public var activeConnections: Double
    public var inactiveConnections: Double
}

/// `/proc/net/ip_vs`: virtual services (`TCP  C0A80016:0CEA wlc`, `FWM  10001000 wlc`) each followed by
/// their real servers (`  -> C0A85216:0CEA Tunnel 100 248 2`). IPv4 addresses are big-endian hex;
/// IPv6 ones are bracketed hex groups.
public func parseIPVS(_ text: String) -> [IPVSBackend] {
    func endpoint(_ s: Substring) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...], radix: 16) else { return nil }
        let host = s[..<colon]
        if host.first == "[", host.last == "]" {
            let groups = host.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
            guard groups.count == 8 else { return nil }
            var bytes: [UInt8] = []
            for g in groups {
                guard let w = UInt16(g, radix: 16) else { return nil }
                bytes += [UInt8(w >> 8), UInt8(w & 0xff)]
            }
            return (formatIPv6(bytes), port)
        }
        guard host.count == 8, let v = UInt32(host, radix: 16) else { return nil }
        return ("\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)", port)
    }
    var out: [IPVSBackend] = []
    var service: (proto: String, address: String, port: Int, mark: String)?
    for line in lines(text) {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 2 else { continue }
        if f[0] == "->" {
            guard let s = service, f.count >= 6, let (address, port) = endpoint(f[1]), let weight = Double(f[3]),
                  let active = Double(f[4]), let inactive = Double(f[5]) else { continue }
            out.append(IPVSBackend(proto: s.proto, localAddress: s.address, localPort: s.port, localMark: s.mark,
                                   remoteAddress: address, remotePort: port, weight: weight,
                                   activeConnections: active, inactiveConnections: inactive))
        } else if f[0] == "FWM" {
            service = ("FWM", "", 0, String(f[1]))
        } else if f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" {
            service = endpoint(f[1]).map { (String(f[0]), $0.0, $0.1, "") }
        } else {
            service = nil
        }
    }
    return out
}

/// `/proc/net/ip_vs_stats`: the totals line (connections, incoming and outgoing packets, incoming and
/// outgoing bytes, hexadecimal) under the two header lines. Nil when it is missing or malformed.
public func parseIPVSStats(_ text: String) -> (connections: Double, inPackets: Double, outPackets: Double, inBytes: Double, outBytes: Double)? {
    let all = lines(text)
    guard all.count >= 3 else { return nil }
    let v = all[2].split(separator: " ", omittingEmptySubsequences: true).compactMap { UInt64($0, radix: 16) }
    guard v.count == 5 else { return nil }
    return (Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]), Double(v[4]))
}
