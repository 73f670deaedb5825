import Glibc
import TwinCore

/// The list of every collector HostTwin knows, with its default on/off and interval. Adding a collector
/// means one file and one line here.
public enum CollectorRegistry {
    /// One registered collector.
    public struct Entry: Sendable {
        public var name: String
        public var enabledByDefault: Bool
        /// Default interval in milliseconds (collectors of slow facts run less often than every tick).
        public var defaultInterval: Int64
        public var summary: String
        let make: @Sendable () -> any Collector
    }

    public static let all: [Entry] = [
        Entry(name: "cpu", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/stat: CPU time by mode, context switches, forks, interrupts", make: { CPUCollector() }),
        Entry(name: "memory", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/meminfo", make: { MemoryCollector() }),
        Entry(name: "load", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/loadavg", make: { LoadCollector() }),
        Entry(name: "pressure", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/pressure (PSI)", make: { PressureCollector() }),
        Entry(name: "vmstat", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/vmstat (paging, faults, OOM kills)", make: { VMStatCollector() }),
        Entry(name: "network", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/net/dev and /sys/class/net: interface counters and links", make: { NetworkCollector() }),
        Entry(name: "netstat", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/net/snmp, netstat, snmp6: protocol counters", make: { NetstatCollector() }),
        Entry(name: "sockstat", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/net/sockstat{,6}: socket counts", make: { SockstatCollector() }),
        Entry(name: "disk", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/diskstats: block device I/O", make: { DiskCollector() }),
        Entry(name: "filesystem", enabledByDefault: true, defaultInterval: 1000, summary: "mountinfo + statfs: mounts, space, inodes, read-only", make: { FilesystemCollector() }),
        Entry(name: "storagehealth", enabledByDefault: true, defaultInterval: 10_000, summary: "/sys/fs/ext4/*/errors_count: file system error counters", make: { StorageHealthCollector() }),
        Entry(name: "backup", enabledByDefault: true, defaultInterval: 60_000, summary: "configured backup paths: newest mtime, size, files", make: { BackupCollector() }),
        Entry(name: "thermal", enabledByDefault: true, defaultInterval: 1000, summary: "/sys/class/thermal: zones and cooling devices", make: { ThermalCollector() }),
        Entry(name: "hwmon", enabledByDefault: true, defaultInterval: 1000, summary: "/sys/class/hwmon: temperatures, voltages, fans, power", make: { HwmonCollector() }),
        Entry(name: "kernel", enabledByDefault: true, defaultInterval: 5000, summary: "file handles and entropy", make: { KernelCollector() }),
        Entry(name: "processes", enabledByDefault: true, defaultInterval: 1000, summary: "every process: state, owner, command; CPU, RSS, I/O series", make: { ProcessCollector() }),
        Entry(name: "sockets", enabledByDefault: true, defaultInterval: 1000, summary: "listening sockets and TCP connections with owning processes", make: { SocketCollector() }),
        Entry(name: "services", enabledByDefault: true, defaultInterval: 15_000, summary: "systemd units (when systemd runs)", make: { ServiceCollector() }),
        Entry(name: "files", enabledByDefault: true, defaultInterval: 1000, summary: "watched configuration (/etc): mode, owner, hash and text as versions (inotify); SUID files", make: { FileCollector() }),
        Entry(name: "accounts", enabledByDefault: true, defaultInterval: 5_000, summary: "local accounts (/etc/passwd): name, uid, gid, home, shell", make: { AccountCollector() }),
        Entry(name: "packages", enabledByDefault: true, defaultInterval: 60_000, summary: "installed packages (dpkg)", make: { PackageCollector() }),
        Entry(name: "users", enabledByDefault: true, defaultInterval: 5_000, summary: "logged-in sessions (utmp)", make: { UserCollector() }),
        Entry(name: "host", enabledByDefault: true, defaultInterval: 60_000, summary: "host facts: hostname, kernel, OS, CPU, memory, machine id", make: { HostCollector() }),
        Entry(name: "uname", enabledByDefault: true, defaultInterval: 60_000, summary: "node_uname_info: kernel, release, node name, machine", make: { UnameCollector() }),
        Entry(name: "os", enabledByDefault: true, defaultInterval: 60_000, summary: "node_os_info, node_os_version: /etc/os-release", make: { OSCollector() }),
        Entry(name: "time", enabledByDefault: true, defaultInterval: 1000, summary: "system clock, time zone offset, clock sources", make: { TimeCollector() }),
        Entry(name: "timex", enabledByDefault: true, defaultInterval: 1000, summary: "adjtimex(2): clock discipline, offset, synchronisation", make: { TimexCollector() }),
        Entry(name: "arp", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/net/arp: neighbour entries per device", make: { ARPCollector() }),
        Entry(name: "conntrack", enabledByDefault: true, defaultInterval: 5000, summary: "netfilter connection tracking: entries, limit, statistics", make: { ConntrackCollector() }),
        Entry(name: "softnet", enabledByDefault: true, defaultInterval: 1000, summary: "/proc/net/softnet_stat: per-CPU packet processing", make: { SoftnetCollector() }),
        Entry(name: "udp_queues", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/net/udp{,6}: bytes queued in UDP sockets", make: { UDPQueuesCollector() }),
        Entry(name: "selinux", enabledByDefault: true, defaultInterval: 60_000, summary: "SELinux enabled, configured and current mode", make: { SELinuxCollector() }),
        Entry(name: "textfile", enabledByDefault: true, defaultInterval: 5000, summary: "*.prom files other programs write (node_exporter's textfile directory)", make: { TextfileCollector() }),
        Entry(name: "schedstat", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/schedstat: per-CPU run and wait time, time slices", make: { SchedstatCollector() }),
        Entry(name: "cpufreq", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/devices/system/cpu: frequency, governor, thermal throttles, isolated CPUs", make: { CPUFreqCollector() }),
        Entry(name: "powersupplyclass", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/power_supply: batteries and mains adapters", make: { PowerSupplyCollector() }),
        Entry(name: "rapl", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/powercap: RAPL energy counters", make: { RAPLCollector() }),
        Entry(name: "edac", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/devices/system/edac: memory controller error counts", make: { EDACCollector() }),
        Entry(name: "bonding", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/net bonding masters: slaves and active slaves", make: { BondingCollector() }),
        Entry(name: "nvme", enabledByDefault: true, defaultInterval: 60_000, summary: "/sys/class/nvme: controllers and namespaces", make: { NVMeCollector() }),
        Entry(name: "tapestats", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/scsi_tape: tape drive I/O", make: { TapeCollector() }),
        Entry(name: "fibrechannel", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/fc_host: Fibre Channel ports and counters", make: { FibreChannelCollector() }),
        Entry(name: "infiniband", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/class/infiniband: adapters, port state and counters", make: { InfiniBandCollector() }),
        Entry(name: "mdadm", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/mdstat: software RAID state, disks and sync", make: { MDADMCollector() }),
        Entry(name: "zfs", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/spl/kstat/zfs: ARC and module statistics, pools, datasets", make: { ZFSCollector() }),
        Entry(name: "xfs", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/fs/xfs: per file system XFS statistics", make: { XFSCollector() }),
        Entry(name: "ipvs", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/net/ip_vs: IP Virtual Server totals and backends", make: { IPVSCollector() }),
        Entry(name: "nfs", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/net/rpc/nfs: NFS client RPC statistics", make: { NFSCollector() }),
        Entry(name: "nfsd", enabledByDefault: true, defaultInterval: 5000, summary: "/proc/net/rpc/nfsd: NFS server statistics", make: { NFSDCollector() }),
        Entry(name: "bcache", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/fs/bcache: cache sets, backing and cache devices", make: { BcacheCollector() }),
        Entry(name: "btrfs", enabledByDefault: true, defaultInterval: 5000, summary: "/sys/fs/btrfs: allocation, devices, commits", make: { BtrfsCollector() }),
        Entry(name: "dmi", enabledByDefault: true, defaultInterval: 60_000, summary: "/sys/class/dmi/id: BIOS, board, chassis, product", make: { DMICollector() }),
        Entry(name: "self", enabledByDefault: true, defaultInterval: 5000, summary: "HostTwin's own process: process_* as Prometheus clients report it", make: { SelfCollector() }),
    ]

    public static func entry(_ name: String) -> Entry? { all.first { $0.name == name } }
}

/// Per-collector choices: which run and how often.
public struct CollectorSelection: Sendable, Codable, Hashable {
    /// Collector name → enabled; absent names keep their default.
    public var enabled: [String: Bool] = [:]
    /// Collector name → interval in milliseconds; absent names keep their default.
    public var intervals: [String: Int64] = [:]
    public init(enabled: [String: Bool] = [:], intervals: [String: Int64] = [:]) {
        self.enabled = enabled
        self.intervals = intervals
    }

    /// Checks that every name refers to a known collector.
    public func validate() throws {
        for name in Array(enabled.keys) + Array(intervals.keys) where CollectorRegistry.entry(name) == nil {
            throw TwinError.badInput("unknown collector '\(name)'; known: \(CollectorRegistry.all.map(\.name).joined(separator: ", "))")
        }
        for (name, ms) in intervals where ms < 100 {
            throw TwinError.badInput("collector \(name): interval \(ms) ms is below the 100 ms minimum")
        }
    }
}

/// Runs the enabled collectors at each tick, each when its own interval is due, and gathers one
/// ``Observation``. Owned by a single collection loop.
public final class Sampler {
    struct Scheduled {
        let collector: any Collector
        let interval: Int64
        /// Whether its interval stretches with ``Sampler/relaxation``.
        let relaxable: Bool
        /// `{collector="NAME"}`, the labels of its `node_scrape_collector_*` samples.
        let labels: Labels
        var nextDue: Int64 = .min
        /// Whether its next run hands over every kind in full (``CollectContext/restate``).
        var restate = false
    }

    private var scheduled: [Scheduled]
    private let changeDriven: [any ChangeDrivenCollector]
    private let paths: HostPaths
    private let config: CollectorConfig
    private let reader = FileReader()
    /// Metric types seen so far, handed to each observation so that adding a sample of a known family
    /// never writes to the map.
    private var types: [String: MetricType] = [:]
    /// The last tick's samples, and where each collector's began in them (nil: it did not run then), so a
    /// collector's samples are typed by their place (``Observation/typed(after:offset:)``).
    private var lastSamples: [MetricSample] = []
    private var lastStarts: [Int?]
    /// The latest health line of every enabled collector.
    public private(set) var health: [String: CollectorHealth] = [:]
    /// The enabled collectors' names in order, for ``sortedHealth``.
    private lazy var sortedNames = scheduled.map { $0.collector.name }.sorted()
    /// The latest health line of every collector that has run, sorted by collector (no sort at each tick).
    public var sortedHealth: [CollectorHealth] { sortedNames.compactMap { health[$0] } }
    /// The collector that took longest by the clock in the last tick, and how long (µs): what a tick
    /// that ran late was waiting for.
    public private(set) var slowest: (name: String, micros: Int64) = ("", 0)

    public init(paths: HostPaths = HostPaths(), selection: CollectorSelection = .init(), config: CollectorConfig = .init(), tick: Int64 = 1000) {
        self.paths = paths
        self.config = config
        scheduled = CollectorRegistry.all.compactMap { e in
            guard selection.enabled[e.name] ?? e.enabledByDefault else { return nil }
            return Scheduled(collector: e.make(), interval: max(selection.intervals[e.name] ?? e.defaultInterval, tick),
                             relaxable: !Self.essential.contains(e.name), labels: Labels(["collector": e.name]))
        }
        changeDriven = scheduled.compactMap { $0.collector as? any ChangeDrivenCollector }
        lastStarts = Array(repeating: nil, count: scheduled.count)
    }

    /// Names of the collectors that run.
    public var collectorNames: [String] { scheduled.map { $0.collector.name } }

    /// Collectors that keep their interval whatever the CPU budget: the series that carry early warnings
    /// (CPU, memory, load, pressure, disk I/O and space, network) and the state of processes and sockets.
    public static let essential: Set<String> = ["cpu", "memory", "load", "pressure", "disk", "filesystem", "network", "processes", "sockets", "self"]

    /// How many times their interval the other collectors wait between runs (1: as configured), so the
    /// collection stays within its CPU budget; set by the collection loop. The essential collectors' steady
    /// classes wait as many times theirs (``CollectContext/relaxation``).
    public var relaxation: Int64 = 1

    /// `interval` stretched `by` times, but not past a minute (nor below the interval itself): a relaxed
    /// series stays as fresh as a one-minute scrape, so dashboards and their template variables (Grafana's
    /// `label_values(node_uname_info, …)` over the last minutes) keep finding it.
    public static func relaxed(_ interval: Int64, by factor: Int64) -> Int64 {
        max(interval, min(interval * factor, longestRelaxedInterval))
    }
    /// The longest a relaxed collector or entity class waits between reads (ms).
    public static let longestRelaxedInterval: Int64 = 60_000

    /// The collectors whose interval ``relaxation`` stretches.
    public var relaxableNames: [String] { scheduled.filter(\.relaxable).map { $0.collector.name } }

    /// The descriptors of the change-driven collectors (the processes' kernel events), readable when they
    /// have changes to refresh between ticks. Empty before the first tick and where the kernel offers none.
    public var changeDescriptors: [Int32] { changeDriven.compactMap(\.changeDescriptor) }

    /// The earliest fast poll a change-driven collector asks for (ms since the epoch); nil when all are steady.
    public var nextRefresh: Int64? { changeDriven.compactMap(\.nextRefresh).min() }

    /// Change-driven capture between ticks: the change-driven collectors take what the kernel reported and
    /// the observation holds the whole entity set of each kind that changed, and no samples; nil when
    /// nothing changed.
    public func refreshChanged(now: Int64) -> Observation? {
        var ctx = CollectContext(paths: paths, reader: reader, config: config, observation: Observation(timestamp: now))
        var changed = false
        for c in changeDriven where c.refreshChanged(&ctx) { changed = true }
        return changed ? ctx.observation : nil
    }

    /// Asks each collector's next run for its entities in full: what was last handed over (at a tick or
    /// between ticks) was not stored, and a collector that hands a kind over only when it changed would
    /// otherwise leave the store without the change until the next one.
    public func restate() {
        for i in scheduled.indices { scheduled[i].restate = true }
    }

    /// Runs every collector that is due at `now` (ms) and returns what they observed. A collector
    /// that throws is reported in health, never propagated: one broken source must not stop the others.
    public func tick(now: Int64, force: Bool = false) -> Observation {
        reader.startTick()
        var ctx = CollectContext(paths: paths, reader: reader, config: config, observation: Observation(timestamp: now))
        ctx.observation.samples.reserveCapacity(1024)
        ctx.observation.types = types
        ctx.relaxation = relaxation
        slowest = ("", 0)
        // One reading of each clock between two collectors ends the one and starts the next: the thread's CPU
        // clock is a system call (not in the vDSO), two per collector cost 0.04 ms/s.
        var start = threadCPUMicros(), began = monotonicMicros()
        var starts = [Int?](repeating: nil, count: scheduled.count)
        for i in scheduled.indices where force || scheduled[i].nextDue <= now {
            let c = scheduled[i].collector
            let first = ctx.observation.samples.count
            starts[i] = first
            ctx.observation.typed(after: lastSamples, offset: lastStarts[i].map { $0 - first })
            ctx.restate = scheduled[i].restate
            scheduled[i].restate = false
            let h: CollectorHealth
            do {
                switch try c.collect(&ctx) {
                case .ok: h = CollectorHealth(collector: c.name, status: .ok)
                case .noData(let why): h = CollectorHealth(collector: c.name, status: .noData, message: why)
                }
            } catch {
                h = CollectorHealth(collector: c.name, status: .error, message: "\(error)")
            }
            var hh = h
            let end = threadCPUMicros(), ended = monotonicMicros()
            hh.durationMicros = end - start
            let took = ended - began
            (start, began) = (end, ended)
            if took > slowest.micros { slowest = (c.name, took) }
            // node_exporter's per-collector figures, so its dashboards' "scrape" panels have data.
            let l = scheduled[i].labels
            ctx.observation.add("node_scrape_collector_duration_seconds", l, Double(hh.durationMicros) / 1e6)
            ctx.observation.add("node_scrape_collector_success", l, hh.status == .ok ? 1 : 0)
            ctx.observation.health.append(hh)
            health[c.name] = hh
            // Stay on the interval grid: the next run is the first multiple of the interval after now.
            let iv = scheduled[i].relaxable ? Self.relaxed(scheduled[i].interval, by: relaxation) : scheduled[i].interval
            scheduled[i].nextDue = (now / iv + 1) * iv
        }
        ctx.observation.typed(after: [], offset: nil)
        for c in changeDriven { c.keepUp(&ctx) }
        types = ctx.observation.types
        (lastSamples, lastStarts) = (ctx.observation.samples, starts)
        return ctx.observation
    }
}

/// Monotonic clock time in microseconds (how long something took by the clock).
public func monotonicMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// The whole process's CPU time in microseconds, every thread's.
public func processCPUMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

/// Thread CPU time in microseconds (what a collector costs, independent of other load).
public func threadCPUMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}
