import Glibc

/// Socket dumps over netlink `NETLINK_SOCK_DIAG` (what `ss` uses). Asking for TCP sockets in LISTEN state
/// only lets the kernel skip its established-connection hash: about 20 µs here, where reading
/// `/proc/net/tcp` costs about 4 ms (see docs/ARCHITECTURE.md).
///
/// One netlink socket and one receive buffer serve every request (a socket made and closed per request
/// cost about 8 µs more); a request that fails closes the socket, so a half-read answer never meets the
/// next request. Not thread-safe: each collector owns one.
final class NetlinkSockDiag {
    static let netlinkSockDiag: Int32 = 4
    static let sockDiagByFamily: UInt16 = 20
    /// The request of the older `inet_diag_req` format, which asks for TCP sockets of any family.
    static let tcpDiagGetSock: UInt16 = 18
    static let tcpStateListen = 10

    /// Dumps sockets of `family` (AF_INET/AF_INET6) and `proto` (IPPROTO_TCP/UDP) whose state bit is in
    /// `states`; nil when netlink is unavailable or the kernel refuses.
    func dump(family: UInt8, proto: UInt8, states: UInt32) -> [SocketLine]? {
        // inet_diag_req_v2 (56 bytes): family, protocol, ext, pad, states, then the socket id.
        var body = [UInt8](repeating: 0, count: 56)
        body[0] = family
        body[1] = proto
        Self.put32(&body, 4, states)
        return request(type: Self.sockDiagByFamily, body)
    }

    /// TCP sockets of both families whose state bit is in `states`, by family, in one walk of the kernel's
    /// tables. A dump by family walks the whole established-connection hash once per family (its size
    /// follows the memory, not the connections: 262,144 buckets here, 1.2 ms a walk); the older request
    /// asks for any family and walks it once. Where the kernel refuses that request, one dump per family.
    func tcp(states: UInt32) -> (ipv4: [SocketLine], ipv6: [SocketLine])? {
        // inet_diag_req (60 bytes): family (AF_UNSPEC), src_len, dst_len, ext, the socket id (48), states, dbs.
        var body = [UInt8](repeating: 0, count: 60)
        Self.put32(&body, 52, states)
        if let both = request(type: Self.tcpDiagGetSock, body) {
            return (both.filter { $0.family != UInt8(AF_INET6) }, both.filter { $0.family == UInt8(AF_INET6) })
        }
        guard let v4 = dump(family: UInt8(AF_INET), proto: UInt8(IPPROTO_TCP), states: states),
              let v6 = dump(family: UInt8(AF_INET6), proto: UInt8(IPPROTO_TCP), states: states) else { return nil }
        return (v4, v6)
    }

    /// The TCP socket whose own end is `line`'s local end and whose peer is its remote end, with its inode
    /// and uid: sock_diag's exact request, a look-up in the connection hash (microseconds) where a dump
    /// walks all of it. Nil when there is none (closed since) or the kernel refuses.
    func find(tcp line: SocketLine) -> SocketLine? {
        let family = line.family == UInt8(AF_INET6) ? AF_INET6 : AF_INET
        // inet_diag_req_v2: family, protocol, ext, pad, states (any), then inet_diag_sockid: the ports
        // (network order), source and destination addresses (16 bytes each), interface, cookie (none).
        var body = [UInt8](repeating: 0, count: 56)
        body[0] = UInt8(family)
        body[1] = UInt8(IPPROTO_TCP)
        Self.put32(&body, 4, .max)
        body[8] = UInt8(line.localPort >> 8 & 0xff); body[9] = UInt8(line.localPort & 0xff)
        body[10] = UInt8(line.remotePort >> 8 & 0xff); body[11] = UInt8(line.remotePort & 0xff)
        for (address, at) in [(line.localAddress, 12), (line.remoteAddress, 28)] {
            var bytes = [UInt8](repeating: 0, count: 16)
            guard inet_pton(family, address, &bytes) == 1 else { return nil }
            body.replaceSubrange(at..<(at + 16), with: bytes)
        }
        Self.put32(&body, 48, .max)
        Self.put32(&body, 52, .max)
        return request(type: Self.sockDiagByFamily, body, dump: false)?.first
    }

    private static func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    private var fd: Int32 = -1
    private var buf = [UInt8](repeating: 0, count: 32 * 1024)
    private var sequence: UInt32 = 0

    init() {}
    deinit { if fd >= 0 { close(fd) } }

    /// Sends one request of `type` with `body` after the netlink header and reads the sockets: a dump's
    /// until NLMSG_DONE, an exact request's one answer (none when the kernel answers that it has no such
    /// socket). Nil when netlink is unavailable or the kernel answers a dump with an error (the socket is
    /// closed then, and the next request opens another).
    private func request(type: UInt16, _ body: [UInt8], dump: Bool = true) -> [SocketLine]? {
        if fd < 0 { fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkSockDiag) }
        guard fd >= 0 else { return nil }
        guard let lines = exchange(type: type, body, dump: dump) else {
            close(fd)
            fd = -1
            return nil
        }
        return lines
    }

    private func exchange(type: UInt16, _ body: [UInt8], dump: Bool) -> [SocketLine]? {
        sequence &+= 1
        // nlmsghdr (16): length, type, flags (NLM_F_REQUEST, and NLM_F_DUMP for a dump), sequence, port id.
        var req = [UInt8](repeating: 0, count: 16)
        Self.put32(&req, 0, UInt32(16 + body.count))
        req[4] = UInt8(type & 0xff); req[5] = UInt8(type >> 8)
        let flags: UInt16 = dump ? 0x1 | 0x300 : 0x1
        req[6] = UInt8(flags & 0xff); req[7] = UInt8(flags >> 8)
        Self.put32(&req, 8, sequence)
        req += body
        // An unconnected netlink socket sends to the kernel (port id 0) when no address is given.
        let sent = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == req.count else { return nil }
        var out: [SocketLine] = []
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            let (socks, done, err) = buf.withUnsafeBufferPointer { parseInetDiagMessages(UnsafeBufferPointer(rebasing: $0[0..<n])) }
            // An exact request for a socket that is not there is answered with an error (ENOENT): no socket,
            // and the netlink socket stays usable.
            if err != nil && err != 0 { return dump ? nil : [] }
            out += socks
            if done || !dump { return out }
        }
    }
}
