import Glibc
import TwinCore

/// HostTwin's own process as Prometheus client libraries report theirs (`process_*`, what
/// node_exporter's "Node Exporter" dashboard rows show): CPU time, resident and virtual memory, open
/// and maximum file descriptors, start time. Only where the paths are this host's.
public final class SelfCollector: Collector {
    public let name = "self"
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    private var limits: (fds: Double?, address: Double?, read: Int64)?
    public init() {}

    /// The collection loop's own health counters, which the runtime adds to the ticks this collector runs at
    /// (`CollectionMetrics.store(into:)`, in this order): stored and queryable as any series. `/metrics`
    /// renders them from its registry, up to the moment, and leaves out the stored copies.
    public static let healthMetrics = [
        "hosttwin_ticks_total", "hosttwin_tick_failures_total", "hosttwin_ticks_skipped_total", "hosttwin_change_refreshes_total",
        "hosttwin_change_refreshes_skipped_total", "hosttwin_twin_update_latency_seconds_sum", "hosttwin_twin_update_latency_seconds_count",
    ]

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard ctx.paths.proc == "/proc", let stat = ctx.reader.readHeld("/proc/self/stat"), let close = stat.lastIndex(of: ")") else {
            return .noData("not this host's /proc")
        }
        // Fields after the command: state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
        let f = stat[stat.index(after: close)...].split(separator: " ")
        guard f.count >= 22, let utime = Double(f[11]), let stime = Double(f[12]), let start = Double(f[19]),
              let vsize = Double(f[20]), let rss = Double(f[21]) else { return .noData("unreadable /proc/self/stat") }
        let now = ctx.observation.timestamp
        ctx.observation.counter("process_cpu_seconds_total", .empty, (utime + stime) / ticksPerSecond)
        ctx.observation.add("process_virtual_memory_bytes", .empty, vsize)
        ctx.observation.add("process_resident_memory_bytes", .empty, rss * pageSize)
        if let boot = ctx.reader.readShared(ctx.paths.proc("stat")).flatMap({ parseProcStat($0).bootTime }) {
            ctx.observation.add("process_start_time_seconds", .empty, boot + start / ticksPerSecond)
        }
        if let fds = ctx.reader.list("/proc/self/fd") { ctx.observation.add("process_open_fds", .empty, Double(fds.count)) }
        if limits.map({ now - $0.read >= 60_000 || now < $0.read }) ?? true {
            let text = ctx.reader.read("/proc/self/limits") ?? ""
            limits = (Self.softLimit(text, "Max open files"), Self.softLimit(text, "Max address space"), now)
        }
        if let fds = limits?.fds { ctx.observation.add("process_max_fds", .empty, fds) }
        if let address = limits?.address { ctx.observation.add("process_virtual_memory_max_bytes", .empty, address) }
        return .ok
    }

    /// The soft limit of one row of `/proc/PID/limits`; "unlimited" is 2^64 - 1, as Go's client reports it.
    static func softLimit(_ text: String, _ row: String) -> Double? {
        guard let line = lines(text).first(where: { $0.hasPrefix(row) }) else { return nil }
        let value = line.dropFirst(row.count).split(separator: " ").first
        return value == "unlimited" ? 0x1p64 : value.flatMap { Double($0) }
    }
}
