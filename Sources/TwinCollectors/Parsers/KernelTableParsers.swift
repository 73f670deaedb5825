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
