import TwinCore

/// Block device I/O from `/proc/diskstats`, named as node_exporter's `node_disk_*`; partitions, RAM and
/// loop devices are left out as node_exporter's default device filter does.
public final class DiskCollector: Collector {
    public let name = "disk"
    /// Per line: the device's labels, or nil when the device filter excludes it.
    private let devices = LineKeyCache<Labels>()
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
        let found: Void? = ctx.reader.withBytes(ctx.paths.proc("diskstats")) { b in
            let s = ByteScanner(b)
            scanDiskstats(s) { index, name, _, _, counters in
                guard let l = devices.value(index, name, s, {
                    let d = s.string(name)
                    return Self.isExcluded(d) ? nil : Labels(["device": d])
                }) else { return }
                for i in 0..<min(counters.count, Self.fields.count) {
                    let (metric, scale, type) = Self.fields[i]
                    ctx.observation.add(metric, l, counters[i] * scale, type)
                }
            }
        }
        return found == nil ? .noData("diskstats missing") : .ok
    }
}
