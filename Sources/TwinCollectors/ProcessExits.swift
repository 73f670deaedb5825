import Glibc

/// How a process ended: its exit status, or the signal that killed it.
public struct ProcessExit: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    /// The raw wait status (`status << 8`, or the signal number in the low 7 bits).
    public var waitStatus: UInt32

    public init(pid: Int32, waitStatus: UInt32) {
        self.pid = pid
        self.waitStatus = waitStatus
    }

    /// True for exit status 0.
    public var succeeded: Bool { waitStatus == 0 }

    /// "exit 0", "exit 3", "signal 9".
    public var description: String {
        waitStatus & 0x7f == 0 ? "exit \((waitStatus >> 8) & 0xff)" : "signal \(waitStatus & 0x7f)"
    }
}

/// What one batch of the kernel's process events said: processes that exited (with their status), and
/// processes to re-read because they started (fork), replaced their program (exec), changed their
/// user or group, or renamed themselves. Threads (pid ≠ tgid) are not processes and are left out.
public struct ProcessEvents: Sendable, Equatable {
    public var exits: [ProcessExit] = []
    public var changed: Set<Int32> = []
    /// Those of ``changed`` that replaced their program (exec): their command line is read again even
    /// when the name stays (`sh` running `sh`), or was read in the middle of the exec (the new name, and
    /// an empty command line while the kernel sets up the new one).
    public var execs: Set<Int32> = []
    /// The kernel dropped events since the last drain (ENOBUFS): some changes went unreported.
    public var lost = false
    public init(exits: [ProcessExit] = [], changed: Set<Int32> = []) {
        self.exits = exits
        self.changed = changed
    }
    public var isEmpty: Bool { exits.isEmpty && changed.isEmpty }
}

/// The process events in one datagram of the kernel's process events connector (netlink
/// `NETLINK_CONNECTOR`, `CN_IDX_PROC`): `nlmsghdr` (16 bytes), `cn_msg` (20), `proc_event` (`what` at 0,
/// the event at 16). Fork: parent pid, tgid, child pid, tgid; exec, uid, gid, comm: pid, tgid, ...;
/// exit: pid, tgid, exit_code, exit_signal. Other events are skipped; a truncated message ends the parse.
public func parseProcConnectorEvents(_ bytes: UnsafeRawBufferPointer) -> ProcessEvents {
    func u32(_ o: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
    let fork: UInt32 = 0x1, exec: UInt32 = 0x2, uid: UInt32 = 0x4, gid: UInt32 = 0x40, comm: UInt32 = 0x200, exit: UInt32 = 0x8000_0000
    var out = ProcessEvents()
    var offset = 0
    while offset + 16 <= bytes.count {
        let length = Int(u32(offset))
        guard length >= 16, offset + length <= bytes.count else { break }
        // what (36 − 16 = 20 into the payload), then 16 bytes of cpu and timestamp, then the event's words.
        if length >= 68 {
            let what = u32(offset + 36), a = u32(offset + 52), b = u32(offset + 56), c = u32(offset + 60), d = u32(offset + 64)
            func valid(_ pid: UInt32) -> Bool { pid > 0 && pid <= UInt32(Int32.max) }
            switch what {
            case exit where a == b && valid(a): out.exits.append(ProcessExit(pid: Int32(a), waitStatus: c))
            case fork where c == d && valid(c): out.changed.insert(Int32(c))
            case exec where a == b && valid(a): out.changed.insert(Int32(a)); out.execs.insert(Int32(a))
            case uid, gid, comm: if a == b && valid(a) { out.changed.insert(Int32(a)) }
            default: break
            }
        }
        offset += (length + 3) & ~3
    }
    return out
}

/// Process events as they happen, read without blocking: at each tick, and between ticks when the
/// socket becomes readable (``descriptor``, change-driven capture). Needs root (CAP_NET_ADMIN) and a kernel
/// with the process events connector; where either is missing ``open()`` returns nil and the twin goes
/// without exit statuses and polls once per tick.
final class ProcessEventWatcher {
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 8192)

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Readable when events are waiting.
    var descriptor: Int32 { fd }

    static func open() -> ProcessEventWatcher? {
        let netlinkConnector: Int32 = 11, cnIdxProc: UInt32 = 1
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), netlinkConnector)
        guard fd >= 0 else { return nil }
        // sockaddr_nl (12 bytes; not imported by Glibc): family, padding, port id 0 (the kernel picks), groups.
        var address = [UInt8](repeating: 0, count: 12)
        address[0] = UInt8(AF_NETLINK); address[8] = UInt8(cnIdxProc)
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12) }
        // nlmsghdr (16, type NLMSG_DONE) + cn_msg (20: idx, val CN_VAL_PROC, seq, ack, len 4, flags) + PROC_CN_MCAST_LISTEN.
        var message = [UInt8](repeating: 0, count: 40)
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { message[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        put32(0, 40); message[4] = 3
        put32(16, cnIdxProc); put32(20, 1); message[32] = 4
        put32(36, 1)
        let sent = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard bound == 0, sent == message.count else { close(fd); return nil }
        return ProcessEventWatcher(fd: fd)
    }

    /// The events received since the last call.
    func drain() -> ProcessEvents {
        var out = ProcessEvents()
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            // EAGAIN: nothing more; ENOBUFS: the kernel dropped events (a burst), the rest still comes.
            if n < 0 && errno == ENOBUFS { out.lost = true; continue }
            guard n > 0 else { return out }
            let batch = buffer.withUnsafeBytes { parseProcConnectorEvents(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            out.exits += batch.exits
            out.changed.formUnion(batch.changed)
            out.execs.formUnion(batch.execs)
        }
    }
}
