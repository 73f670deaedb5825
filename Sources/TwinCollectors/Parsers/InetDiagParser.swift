/// Parses a buffer of netlink `SOCK_DIAG_BY_FAMILY` replies (`nlmsghdr` + `inet_diag_msg` each) into socket
/// lines. Returns the sockets and whether the dump is complete (`NLMSG_DONE` seen). Malformed messages
/// (lengths that run past the buffer, short bodies) end the parse with what was read so far.
public func parseInetDiagMessages(_ b: UnsafeBufferPointer<UInt8>) -> (sockets: [SocketLine], done: Bool, error: Int32?) {
    var out: [SocketLine] = []
    var off = 0
    func u32le(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24 }
    func u16be(_ o: Int) -> Int { Int(b[o]) << 8 | Int(b[o + 1]) }
    while off + 16 <= b.count {
        let len = Int(u32le(off))
        let type = UInt16(b[off + 4]) | UInt16(b[off + 5]) << 8
        guard len >= 16, off + len <= b.count else { break }
        if type == 3 { return (out, true, nil) } // NLMSG_DONE
        if type == 2 { // NLMSG_ERROR: a negative errno follows the header
            let err = off + 20 <= b.count ? Int32(bitPattern: u32le(off + 16)) : -1
            return (out, true, err)
        }
        let m = off + 16
        if len >= 16 + 72 {
            let family = b[m]
            let state = Int(b[m + 1])
            let sport = u16be(m + 4), dport = u16be(m + 6)
            let src: String, dst: String
            if family == 2 {
                src = "\(b[m + 8]).\(b[m + 9]).\(b[m + 10]).\(b[m + 11])"
                dst = "\(b[m + 24]).\(b[m + 25]).\(b[m + 26]).\(b[m + 27])"
            } else {
                src = formatIPv6(Array(b[(m + 8)..<(m + 24)]))
                dst = formatIPv6(Array(b[(m + 24)..<(m + 40)]))
            }
            out.append(SocketLine(localAddress: src, localPort: sport, remoteAddress: dst, remotePort: dport,
                                  state: state, uid: u32le(m + 64), inode: UInt64(u32le(m + 68)), family: family))
        }
        off += (len + 3) & ~3
    }
    return (out, false, nil)
}
