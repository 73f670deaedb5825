/// One socket line of `/proc/net/{tcp,tcp6,udp,udp6}`.
public struct SocketLine: Sendable, Equatable {
    public var localAddress: String
    public var localPort: Int
    public var remoteAddress: String
    public var remotePort: Int
    /// The kernel's TCP state number (0x0A = LISTEN; for UDP, 0x07 = unconnected/"listening").
    public var state: Int
    public var uid: UInt32
    public var inode: UInt64
    /// The address family a netlink dump reported (AF_INET 2, AF_INET6 10); 0 from the proc tables, whose
    /// file says it.
    public var family: UInt8 = 0
}

/// Names of the kernel's TCP states, indexed by state number.
public let tcpStateNames = [
    "", "established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait", "close",
    "close_wait", "last_ack", "listen", "closing", "new_syn_recv",
]

/// Parses a `/proc/net/tcp`-style table. The header and malformed lines are skipped.
public func parseSocketTable(_ text: String) -> [SocketLine] {
    var out: [SocketLine] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count >= 10, f[0].hasSuffix(":"),
              let local = parseHexEndpoint(f[1]), let remote = parseHexEndpoint(f[2]),
              let state = Int(f[3], radix: 16), let uid = UInt32(f[7]), let inode = UInt64(f[9]) else { continue }
        out.append(SocketLine(localAddress: local.0, localPort: local.1, remoteAddress: remote.0,
                              remotePort: remote.1, state: state, uid: uid, inode: inode))
    }
    return out
}

/// `0100007F:0016` → ("127.0.0.1", 22); 32-hex-digit IPv6 addresses are four little-endian words.
func parseHexEndpoint(_ s: Substring) -> (String, Int)? {
    guard let colon = s.firstIndex(of: ":"), let port = Int(s[s.index(after: colon)...], radix: 16) else { return nil }
    let hex = s[..<colon]
    if hex.count == 8 {
        guard let v = UInt32(hex, radix: 16) else { return nil }
        let b = [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24]
        return (b.map { String($0) }.joined(separator: "."), port)
    }
    if hex.count == 32 {
        var bytes: [UInt8] = []
        var idx = hex.startIndex
        for _ in 0..<4 {
            let end = hex.index(idx, offsetBy: 8)
            guard let w = UInt32(hex[idx..<end], radix: 16) else { return nil }
            bytes += [UInt8(w & 0xff), UInt8((w >> 8) & 0xff), UInt8((w >> 16) & 0xff), UInt8(w >> 24)]
            idx = end
        }
        return (formatIPv6(bytes), port)
    }
    return nil
}

/// Formats 16 bytes as an IPv6 address (RFC 5952: lower case, longest zero run as `::`, v4-mapped as dotted).
func formatIPv6(_ b: [UInt8]) -> String {
    if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff {
        return "::ffff:" + b[12...].map { String($0) }.joined(separator: ".")
    }
    let words = (0..<8).map { Int(b[2 * $0]) << 8 | Int(b[2 * $0 + 1]) }
    var bestStart = -1, bestLen = 0, i = 0
    while i < 8 {
        if words[i] == 0 {
            var j = i
            while j < 8, words[j] == 0 { j += 1 }
            if j - i > bestLen, j - i >= 2 { bestStart = i; bestLen = j - i }
            i = j
        } else { i += 1 }
    }
    func hex(_ r: Range<Int>) -> String { r.map { String(words[$0], radix: 16) }.joined(separator: ":") }
    if bestStart < 0 { return hex(0..<8) }
    return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
}
