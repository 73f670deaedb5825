import Glibc

/// Socket dumps over netlink `NETLINK_SOCK_DIAG` (what `ss` uses). Asking for TCP sockets in LISTEN state
/// only lets the kernel skip its established-connection hash: about 20 µs here, where reading
/// `/proc/net/tcp` costs about 4 ms (see docs/ARCHITECTURE.md).
enum NetlinkSockDiag {
    static let netlinkSockDiag: Int32 = 4
    static let sockDiagByFamily: UInt16 = 20
    static let tcpStateListen = 10

    /// Dumps sockets of `family` (AF_INET/AF_INET6) and `proto` (IPPROTO_TCP/UDP) whose state bit is in
    /// `states`; nil when netlink is unavailable or the kernel refuses.
    static func dump(family: UInt8, proto: UInt8, states: UInt32) -> [SocketLine]? {
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // nlmsghdr (16) + inet_diag_req_v2 (56)
        var req = [UInt8](repeating: 0, count: 72)
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { req[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        put32(0, 72)
        req[4] = UInt8(sockDiagByFamily & 0xff); req[5] = UInt8(sockDiagByFamily >> 8)
        let flags: UInt16 = 0x1 | 0x300 // NLM_F_REQUEST | NLM_F_DUMP
        req[6] = UInt8(flags & 0xff); req[7] = UInt8(flags >> 8)
        put32(8, 1)
        req[16] = family
        req[17] = proto
        put32(20, states)
        // An unconnected netlink socket sends to the kernel (port id 0) when no address is given.
        let sent = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == req.count else { return nil }
        var out: [SocketLine] = []
        var buf = [UInt8](repeating: 0, count: 32 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            let (socks, done, err) = buf.withUnsafeBufferPointer { parseInetDiagMessages(UnsafeBufferPointer(rebasing: $0[0..<n])) }
            if err != nil && err != 0 { return nil }
            out += socks
            if done { return out }
        }
    }
}
