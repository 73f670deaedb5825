import TwinCore

/// Pressure stall information from `/proc/pressure/{cpu,io,memory,irq}`, when the kernel has PSI.
public final class PressureCollector: Collector {
    public let name = "pressure"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        for resource in ["cpu", "io", "memory", "irq"] {
            guard let text = ctx.reader.read(ctx.paths.proc("pressure/" + resource)) else { continue }
            let p = parsePressure(text)
            // node_exporter converts microseconds with two divisions; the same arithmetic gives the same bits.
            if resource != "irq", let some = p.some {
                ctx.observation.counter("node_pressure_\(resource)_waiting_seconds_total", .empty, some / 1000 / 1000)
                any = true
            }
            if resource != "cpu", let full = p.full {
                ctx.observation.counter("node_pressure_\(resource)_stalled_seconds_total", .empty, full / 1000 / 1000)
                any = true
            }
        }
        return any ? .ok : .noData("no /proc/pressure (kernel without PSI)")
    }
}
