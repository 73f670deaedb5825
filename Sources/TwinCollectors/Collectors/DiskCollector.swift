import TwinCore

/// Block device I/O from `/proc/diskstats`, named as node_exporter's `node_disk_*`; partitions, RAM and
/// loop devices are left out as node_exporter's default device filter does.
public final class DiskCollector: Collector {
    public let name = "disk"
    /// Per line: the device's labels, or nil when the device filter excludes it.
    private let devices = LineKeyCache<Labels>()
    /// `node_disk_info` labels by device (read once per device numbers: udev and sysfs facts).
    private var info: [String: Labels] = [:]
    public init() {}

    /// (metric, scale) for each diskstats counter, in file order; nil where node_exporter has no metric.
    static let fields: [(String, Double, MetricType)] = [
        ("node_disk_reads_completed_total", 1, .counter),
        ("node_disk_reads_merged_total", 1, .counter),
        ("node_disk_read_bytes_total", 512, .counter),
        ("node_disk_read_time_seconds_total", 0.001, .counter),
        ("node_disk_writes_completed_total", 1, .counter),
        ("node_disk_writes_merged_total", 1, .counter),
        ("node_disk_written_bytes_total", 512, .counter),
        ("node_disk_write_time_seconds_total", 0.001, .counter),
        ("node_disk_io_now", 1, .gauge),
        ("node_disk_io_time_seconds_total", 0.001, .counter),
        ("node_disk_io_time_weighted_seconds_total", 0.001, .counter),
        ("node_disk_discards_completed_total", 1, .counter),
        ("node_disk_discards_merged_total", 1, .counter),
        ("node_disk_discarded_sectors_total", 1, .counter),
        ("node_disk_discard_time_seconds_total", 0.001, .counter),
        ("node_disk_flush_requests_total", 1, .counter),
        ("node_disk_flush_requests_time_seconds_total", 0.001, .counter),
    ]

    /// node_exporter's default `--collector.diskstats.device-exclude`:
    /// `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`.
    static func isExcluded(_ d: String) -> Bool {
        var s = Substring(d)
        guard let lastNonDigit = s.lastIndex(where: { !$0.isNumber }), lastNonDigit != s.index(before: s.endIndex) else { return false }
        s = s[...lastNonDigit]
        if s == "ram" || s == "zram" || s == "loop" || s == "fd" { return true }
        if s.count == 3, let f = s.first, "hsv".contains(f), s.dropFirst().first == "d", s.last!.isLowercase { return true }
        if s.count == 4, s.hasPrefix("xvd"), s.last!.isLowercase { return true }
        if s.hasPrefix("nvme"), s.hasSuffix("p") {
            let mid = s.dropFirst(4).dropLast()
            let parts = mid.split(separator: "n", omittingEmptySubsequences: false)
            return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        }
        return false
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        // The reader's buffer holds diskstats while it is scanned: facts of new devices are read after.
        var unknown: [(String, Int, Int)] = []
        let found: Void? = ctx.reader.withHeldBytes(ctx.paths.proc("diskstats")) { b in
            let s = ByteScanner(b)
            scanDiskstats(s) { index, name, major, minor, counters in
                guard let l = devices.value(index, name, s, {
                    let d = s.string(name)
                    return Self.isExcluded(d) ? nil : Labels(["device": d])
                }) else { return }
                let device = l["device"] ?? ""
                if let i = info[device], i["major"] == String(major), i["minor"] == String(minor) {
                    ctx.observation.add("node_disk_info", i, 1)
                } else {
                    unknown.append((device, major, minor))
                }
                for i in 0..<min(counters.count, Self.fields.count) {
                    let (metric, scale, type) = Self.fields[i]
                    ctx.observation.add(metric, l, counters[i] * scale, type)
                }
            }
        }
        for (device, major, minor) in unknown {
            let l = Self.infoLabels(device, major: major, minor: minor, ctx.reader, ctx.paths)
            info[device] = l
            ctx.observation.add("node_disk_info", l, 1)
        }
        return found == nil ? .noData("diskstats missing") : .ok
    }

    /// node_exporter's `node_disk_info` labels: the device numbers, what udev recorded about the disk
    /// (`/run/udev/data/bMAJOR:MINOR`; empty where udev does not run) and whether it rotates.
    static func infoLabels(_ device: String, major: Int, minor: Int, _ reader: FileReader, _ paths: HostPaths) -> Labels {
        var udev: [String: String] = [:]
        for line in reader.read(paths.root("/run/udev/data/b\(major):\(minor)"))?.split(separator: "\n") ?? [] where line.hasPrefix("E:") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            udev[String(line[line.index(line.startIndex, offsetBy: 2)..<eq])] = String(line[line.index(after: eq)...])
        }
        var pairs = ["device": device, "major": String(major), "minor": String(minor),
                     "model": udev["ID_MODEL"] ?? "", "path": udev["ID_PATH"] ?? "", "revision": udev["ID_REVISION"] ?? "",
                     "serial": udev["ID_SERIAL_SHORT"] ?? "", "wwn": udev["ID_WWN"] ?? ""]
        if let r = reader.read(paths.sys + "/block/" + device + "/queue/rotational") { pairs["rotational"] = String(r.trimmingSuffixNewlines) }
        return Labels(dictionary: pairs)
    }
}
