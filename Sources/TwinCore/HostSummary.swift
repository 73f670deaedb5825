/// A one-screen summary of a host at one moment, computed from two consecutive sets of series values:
/// CPU busy %, memory, load, busiest processes, file system use and network rates.
public struct HostSummary: Sendable, Codable {
    public struct Process: Sendable, Codable {
        public var pid: Int
        public var name: String
        public var cpuPercent: Double
        public var rssBytes: Double
        enum CodingKeys: String, CodingKey { case pid, name, cpuPercent = "cpu_percent", rssBytes = "rss_bytes" }
    }
    public struct Filesystem: Sendable, Codable {
        public var mountpoint: String
        public var device: String
        public var fstype: String
        public var sizeBytes: Double
        public var availBytes: Double
        public var usedPercent: Double
        enum CodingKeys: String, CodingKey {
            case mountpoint, device, fstype, sizeBytes = "size_bytes", availBytes = "avail_bytes", usedPercent = "used_percent"
        }
    }
    public struct Interface: Sendable, Codable {
        public var device: String
        public var receiveBytesPerSecond: Double
        public var transmitBytesPerSecond: Double
        enum CodingKeys: String, CodingKey { case device, receiveBytesPerSecond = "rx_bytes_per_second", transmitBytesPerSecond = "tx_bytes_per_second" }
    }

    public var time: String
    public var cpuPercent: Double?
    public var cpuCount: Int
    public var memoryTotalBytes: Double?
    public var memoryAvailableBytes: Double?
    public var memoryUsedPercent: Double?
    public var swapUsedBytes: Double?
    public var load1: Double?
    public var load5: Double?
    public var load15: Double?
    public var processes: Int?
    public var topProcesses: [Process]
    public var filesystems: [Filesystem]
    public var interfaces: [Interface]

    enum CodingKeys: String, CodingKey {
        case time, cpuPercent = "cpu_percent", cpuCount = "cpu_count", memoryTotalBytes = "memory_total_bytes"
        case memoryAvailableBytes = "memory_available_bytes", memoryUsedPercent = "memory_used_percent"
        case swapUsedBytes = "swap_used_bytes", load1, load5, load15, processes
        case topProcesses = "top_processes", filesystems, interfaces
    }

    /// Builds the summary from the latest values and those one tick earlier (for rates), each with its time (ms).
    public init(latest: [SeriesKey: (Int64, Double)], previous: [SeriesKey: (Int64, Double)], top: Int = 5) {
        let t = latest.values.map(\.0).max() ?? 0
        time = TwinTime.rfc3339(t)
        func value(_ name: String) -> Double? { latest[SeriesKey(name)]?.1 }
        func rate(_ k: SeriesKey) -> Double? {
            guard let (t1, v1) = latest[k], let (t0, v0) = previous[k], t1 > t0, v1 >= v0 else { return nil }
            return (v1 - v0) / (Double(t1 - t0) / 1000)
        }
        var busy = 0.0, total = 0.0
        var cpus = Set<String>()
        for k in latest.keys where k.metric == "node_cpu_seconds_total" {
            cpus.insert(k.labels["cpu"] ?? "")
            guard let r = rate(k) else { continue }
            total += r
            if k.labels["mode"] != "idle" && k.labels["mode"] != "iowait" { busy += r }
        }
        cpuCount = cpus.count
        cpuPercent = total > 0 ? (busy / total * 100) : nil
        memoryTotalBytes = value("node_memory_MemTotal_bytes")
        memoryAvailableBytes = value("node_memory_MemAvailable_bytes")
        if let tot = memoryTotalBytes, let av = memoryAvailableBytes, tot > 0 { memoryUsedPercent = (tot - av) / tot * 100 }
        if let st = value("node_memory_SwapTotal_bytes"), let sf = value("node_memory_SwapFree_bytes") { swapUsedBytes = st - sf }
        load1 = value("node_load1")
        load5 = value("node_load5")
        load15 = value("node_load15")
        processes = value("node_processes_pids").map { Int($0) }
        var procs: [String: Process] = [:]
        for k in latest.keys where k.metric == "hosttwin_process_cpu_seconds_total" || k.metric == "hosttwin_process_resident_memory_bytes" {
            guard let pidText = k.labels["pid"], let pid = Int(pidText) else { continue }
            var p = procs[pidText] ?? Process(pid: pid, name: k.labels["name"] ?? "?", cpuPercent: 0, rssBytes: 0)
            if k.metric == "hosttwin_process_cpu_seconds_total" { p.cpuPercent = (rate(k) ?? 0) * 100 } else { p.rssBytes = latest[k]!.1 }
            procs[pidText] = p
        }
        topProcesses = Array(procs.values.sorted { ($0.cpuPercent, $0.rssBytes, -$0.pid) > ($1.cpuPercent, $1.rssBytes, -$1.pid) }.prefix(top))
        var fs: [Filesystem] = []
        for k in latest.keys where k.metric == "node_filesystem_size_bytes" {
            guard let size = latest[k]?.1, size > 0 else { continue }
            let avail = latest[SeriesKey("node_filesystem_avail_bytes", k.labels)]?.1 ?? 0
            let free = latest[SeriesKey("node_filesystem_free_bytes", k.labels)]?.1 ?? avail
            let used = size - free
            // df's Use%: used / (used + avail), which accounts for the root reserve.
            let pct = used + avail > 0 ? used / (used + avail) * 100 : 0
            fs.append(Filesystem(mountpoint: k.labels["mountpoint"] ?? "", device: k.labels["device"] ?? "", fstype: k.labels["fstype"] ?? "",
                                 sizeBytes: size, availBytes: avail, usedPercent: pct))
        }
        filesystems = fs.sorted { $0.mountpoint < $1.mountpoint }
        var ifs: [Interface] = []
        for k in latest.keys where k.metric == "node_network_receive_bytes_total" {
            let dev = k.labels["device"] ?? ""
            ifs.append(Interface(device: dev, receiveBytesPerSecond: rate(k) ?? 0,
                                 transmitBytesPerSecond: rate(SeriesKey("node_network_transmit_bytes_total", k.labels)) ?? 0))
        }
        interfaces = ifs.sorted { $0.device < $1.device }
    }
}
