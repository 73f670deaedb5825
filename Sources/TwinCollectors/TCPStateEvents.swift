import CPerfEvent
import Glibc

/// What the kernel reported about TCP sockets since the last drain: each change in the order it happened,
/// and whether some were dropped (the ring was full), in which case only a full dump is right.
struct TCPStateEvents {
    var changes: [TCPStateChange] = []
    var lost = false
}

/// TCP sockets changing state, from the kernel's `sock:inet_sock_set_state` tracepoint through
/// perf_event_open(2): one event per online CPU, each with its ring buffer, all in one epoll descriptor the
/// collection loop waits on. The kernel filters the records to changes into or out of ESTABLISHED and
/// listeners opening or closing. It needs root: CAP_PERFMON, and tracefs mounted (systemd mounts it at
/// /sys/kernel/tracing) or CAP_SYS_ADMIN to read the tracepoint's files where it is not
/// (``PrivateTracefs``); without them ``open(reader:)`` is nil and the sockets collector polls as before.
final class TCPStateWatcher {
    private struct Ring {
        let fd: Int32
        let page: UnsafeMutablePointer<perf_event_mmap_page>
        let mappedBytes: Int
        let data: UnsafeRawPointer
        let size: UInt64
    }

    private let rings: [Ring]
    private let epoll: Int32
    private let layout: TCPStateLayout
    /// The unread bytes of one ring, made contiguous (a record may wrap around its end).
    private var scratch: [UInt8] = []
    /// Changes read but too recent to hand over: another CPU's ring may still get an earlier one.
    private var held: [TCPStateChange] = []

    /// Changes are held back until they are this old (ns): a record is written a few µs after its time is
    /// taken, so a ring read at T may lack a change of another CPU timed just before T.
    static let settle: UInt64 = 1_000_000

    /// Whether changes wait for the next drain (the loop should come back within a few ms).
    var holdsChanges: Bool { !held.isEmpty }

    /// Readable when some ring has records.
    var descriptor: Int32 { epoll }

    /// Data pages per CPU (64 KiB: about 680 records, several seconds of a churning host between drains).
    static let ringPages = 16
    static let tracefsRoots = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    /// The tracepoint's directory under tracefs' root.
    static let eventDirectory = "events/sock/inet_sock_set_state"
    /// TCP_ESTABLISHED = 1, TCP_CLOSE = 7, TCP_LISTEN = 10; IPPROTO_TCP = 6. LISTEN → SYN_RECV (a
    /// connection's socket cloned from its listener) is left out.
    static let filter = "protocol == 6 && (newstate == 1 || oldstate == 1 || newstate == 10 || (oldstate == 10 && newstate == 7))"

    private init(rings: [Ring], epoll: Int32, layout: TCPStateLayout) {
        (self.rings, self.epoll, self.layout) = (rings, epoll, layout)
    }

    deinit {
        close(epoll)
        for r in rings {
            munmap(UnsafeMutableRawPointer(r.page), r.mappedBytes)
            close(r.fd)
        }
    }

    static func open(reader: FileReader) -> TCPStateWatcher? {
        guard let cpus = reader.read("/sys/devices/system/cpu/online").flatMap({ parseCPUList(String($0.filter { !$0.isWhitespace })) }),
              !cpus.isEmpty else { return nil }
        let files = [eventDirectory + "/id", eventDirectory + "/format"]
        for root in tracefsRoots {
            if let (id, layout) = tracepoint(files.map { reader.read(root + "/" + $0) }) {
                return open(tracepoint: id, layout: layout, cpus: cpus)
            }
        }
        // Not mounted: read them in a mount namespace of the reading thread's own, as root can.
        guard let (id, layout) = PrivateTracefs.read(files).flatMap(tracepoint) else { return nil }
        return open(tracepoint: id, layout: layout, cpus: cpus)
    }

    /// The tracepoint's id and record layout from its `id` and `format` files' text.
    static func tracepoint(_ files: [String?]) -> (UInt64, TCPStateLayout)? {
        guard files.count == 2, let id = files[0].flatMap({ UInt64($0.filter { !$0.isWhitespace }) }),
              let layout = files[1].flatMap({ TCPStateLayout(fields: parseTracepointFormat($0)) }) else { return nil }
        return (id, layout)
    }

    private static func open(tracepoint: UInt64, layout: TCPStateLayout, cpus: [Int]) -> TCPStateWatcher? {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { return nil }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mappedBytes = (1 + ringPages) * pageSize
        var rings: [Ring] = []
        func fail() -> TCPStateWatcher? {
            for r in rings { munmap(UnsafeMutableRawPointer(r.page), r.mappedBytes); close(r.fd) }
            close(epoll)
            return nil
        }
        for cpu in cpus {
            var attr = perf_event_attr()
            attr.type = PERF_TYPE_TRACEPOINT.rawValue
            attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
            attr.config = tracepoint
            attr.sample_period = 1
            attr.sample_type = UInt64(PERF_SAMPLE_TIME.rawValue | PERF_SAMPLE_RAW.rawValue)
            attr.wakeup_events = 1
            // Times on CLOCK_MONOTONIC, so that a drain can tell which changes every ring has had time to get.
            attr.use_clockid = 1
            attr.clockid = CLOCK_MONOTONIC
            let fd = hosttwin_perf_event_open(&attr, -1, Int32(cpu), -1, 8 /* PERF_FLAG_FD_CLOEXEC */)
            guard fd >= 0 else { return fail() }
            _ = hosttwin_perf_set_filter(fd, filter) // without it, every change comes and is filtered here
            guard let mapped = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
                close(fd)
                return fail()
            }
            let page = mapped.assumingMemoryBound(to: perf_event_mmap_page.self)
            let offset = page.pointee.data_offset > 0 ? Int(page.pointee.data_offset) : pageSize
            let size = page.pointee.data_size > 0 ? page.pointee.data_size : UInt64(ringPages * pageSize)
            rings.append(Ring(fd: fd, page: page, mappedBytes: mappedBytes, data: UnsafeRawPointer(mapped + offset), size: size))
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.fd = fd
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else { return fail() }
        }
        return TCPStateWatcher(rings: rings, epoll: epoll, layout: layout)
    }

    /// The changes recorded since the last call, every CPU's, in the order they happened (IPPROTO_TCP only),
    /// up to a millisecond ago; later ones are held for the next call. Handing over a change of one CPU before
    /// an earlier one of another could apply a connection's close before its open (a loopback 4-tuple is
    /// reused within seconds).
    func drain() -> TCPStateEvents {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let cutoff = UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec) &- Self.settle
        var out = TCPStateEvents(changes: held)
        held = []
        for ring in rings {
            let head = hosttwin_ring_head(ring.page)
            let tail = ring.page.pointee.data_tail
            guard head > tail else { continue }
            let count = Int(min(head - tail, ring.size))
            if scratch.count < count { scratch = [UInt8](repeating: 0, count: count) }
            let start = Int(tail % ring.size), first = min(count, Int(ring.size) - start)
            scratch.withUnsafeMutableBytes { buffer in
                buffer.baseAddress!.copyMemory(from: ring.data + start, byteCount: first)
                if first < count { (buffer.baseAddress! + first).copyMemory(from: ring.data, byteCount: count - first) }
            }
            hosttwin_ring_set_tail(ring.page, head)
            scratch.withUnsafeBytes { all in
                let bytes = UnsafeRawBufferPointer(rebasing: all[0..<count])
                let (samples, lost) = parsePerfSamples(bytes)
                if lost > 0 { out.lost = true }
                for s in samples {
                    guard let change = layout.change(raw: UnsafeRawBufferPointer(rebasing: bytes[s.raw]), time: s.time),
                          change.protocolNumber == 6 else { continue }
                    out.changes.append(change)
                }
            }
        }
        out.changes.sort { $0.time < $1.time }
        if let late = out.changes.firstIndex(where: { $0.time > cutoff }) {
            held = Array(out.changes[late...])
            out.changes.removeSubrange(late...)
        }
        return out
    }
}
