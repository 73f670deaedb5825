import TwinCore

/// node_exporter's tapestats collector: I/O of SCSI tape drives (`/sys/class/scsi_tape/stN/stats`).
public final class TapeCollector: Collector {
    public let name = "tapestats"
    /// stats file → (metric, divisor).
    static let counters: [(file: String, metric: String, divisor: Double)] = [
        ("io_ns", "node_tape_io_time_seconds_total", 1e9), ("other_cnt", "node_tape_io_others_total", 1),
        ("read_byte_cnt", "node_tape_read_bytes_total", 1), ("read_cnt", "node_tape_reads_completed_total", 1),
        ("read_ns", "node_tape_read_time_seconds_total", 1e9), ("resid_cnt", "node_tape_residual_total", 1),
        ("write_byte_cnt", "node_tape_written_bytes_total", 1), ("write_cnt", "node_tape_writes_completed_total", 1),
        ("write_ns", "node_tape_write_time_seconds_total", 1e9),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/scsi_tape")
        // st0 is the drive; nst0 and the a/l/m suffixes are other modes of the same one.
        guard let drives = ctx.entries(base)?.filter({ $0.hasPrefix("st") && $0.dropFirst(2).allSatisfy(\.isNumber) && $0.count > 2 }),
              !drives.isEmpty else { return .noData("no SCSI tape drives") }
        for drive in drives {
            let stats = "\(base)/\(drive)/stats/", l = Labels(["device": drive])
            if let v = ctx.number(stats + "in_flight") { ctx.observation.add("node_tape_io_now", l, v) }
            for c in Self.counters { if let v = ctx.number(stats + c.file) { ctx.observation.counter(c.metric, l, v / c.divisor) } }
        }
        return .ok
    }
}
