/// One interface line of `/proc/net/dev`: 8 receive and 8 transmit counters.
public struct NetDevLine: Sendable, Equatable {
    public var device: String
    public var receive: [Double]
    public var transmit: [Double]
}

public let netDevReceiveFields = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"]
public let netDevTransmitFields = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"]

/// Parses `/proc/net/dev`, skipping its two header lines and any malformed line.
public func parseNetDev(_ text: String) -> [NetDevLine] {
    var out: [NetDevLine] = []
    for line in lines(text) {
        guard let colon = line.lastIndex(of: ":") else { continue }
        let name = line[..<colon].trimmingSpaces
        let f = line[line.index(after: colon)...].fields
        guard !name.isEmpty, !name.contains("|"), f.count >= 16 else { continue }
        let nums = f.prefix(16).compactMap { Double($0) }
        guard nums.count == 16 else { continue }
        out.append(NetDevLine(device: String(name), receive: Array(nums[0..<8]), transmit: Array(nums[8..<16])))
    }
    return out
}

/// Parses `/proc/net/snmp` and `/proc/net/netstat`: pairs of lines `Proto: names...` / `Proto: values...`,
/// giving `Proto_Name` keys (node_exporter's names). Values that are not numbers are skipped.
public func parseSNMP(_ text: String) -> [(String, Double)] {
    var out: [(String, Double)] = []
    let ls = lines(text)
    var i = 0
    while i + 1 < ls.count {
        let names = ls[i].fields
        let values = ls[i + 1].fields
        guard let p1 = names.first, let p2 = values.first, p1 == p2, p1.hasSuffix(":"), names.count == values.count else {
            i += 1
            continue
        }
        let proto = p1.dropLast()
        for j in 1..<names.count {
            if let v = Double(values[j]) { out.append((proto + "_" + names[j], v)) }
        }
        i += 2
    }
    return out
}

/// Parses `/proc/net/snmp6` (`Ip6InReceives 123` lines) into `Ip6_InReceives` keys, as node_exporter names them.
public func parseSNMP6(_ text: String) -> [(String, Double)] {
    var out: [(String, Double)] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count == 2, let v = Double(f[1]), let six = f[0].firstIndex(of: "6") else { continue }
        let proto = f[0][...six]
        let rest = f[0][f[0].index(after: six)...]
        guard !rest.isEmpty else { continue }
        out.append((proto + "_" + rest, v))
    }
    return out
}

/// Parses `/proc/net/sockstat` or `sockstat6` into `PROTO_field` keys (`TCP_inuse`, `sockets_used`).
public func parseSockstat(_ text: String) -> [(String, Double)] {
    var out: [(String, Double)] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count >= 3, f[0].hasSuffix(":"), (f.count - 1) % 2 == 0 else { continue }
        let proto = f[0].dropLast()
        var i = 1
        while i + 1 < f.count {
            if let v = Double(f[i + 1]) { out.append((proto + "_" + f[i], v)) }
            i += 2
        }
    }
    return out
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
