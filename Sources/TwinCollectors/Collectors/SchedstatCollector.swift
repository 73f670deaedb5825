import TwinCore

/// node_exporter's schedstat collector: per CPU, seconds spent running and waiting to run, and time
/// slices run (`/proc/schedstat`).
public final class SchedstatCollector: Collector {
    public let name = "schedstat"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("schedstat")) else { return .noData("no /proc/schedstat") }
        let rows = parseSchedstat(text)
        guard !rows.isEmpty else { return .noData("/proc/schedstat has no CPU lines") }
        for row in rows {
            let l = Labels(["cpu": row.cpu])
            ctx.observation.counter("node_schedstat_running_seconds_total", l, row.runningNanoseconds / 1e9)
            ctx.observation.counter("node_schedstat_waiting_seconds_total", l, row.waitingNanoseconds / 1e9)
            ctx.observation.counter("node_schedstat_timeslices_total", l, row.timeslices)
        }
        return .ok
    }
}
