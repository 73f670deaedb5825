import TwinCore

/// Pressure stall information from `/proc/pressure/{cpu,io,memory,irq}`, when the kernel has PSI.
public final class PressureCollector: Collector {
    public let name = "pressure"
    private static let resources = ["cpu", "io", "memory", "irq"]
    private static let waiting = resources.map { "node_pressure_\($0)_waiting_seconds_total" }
    private static let stalled = resources.map { "node_pressure_\($0)_stalled_seconds_total" }
    private var files: [String] = []
    /// When each file was last found missing (ms): it is looked for again a minute later, so a kernel
    /// without `irq` pressure (CONFIG_IRQ_TIME_ACCOUNTING off) does not cost a failed open at every tick.
    private var absentAt = [Int64?](repeating: nil, count: resources.count)
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        let now = ctx.observation.timestamp
        if files.isEmpty { files = Self.resources.map { ctx.paths.proc("pressure/" + $0) } }
        for (i, resource) in Self.resources.enumerated() where absentAt[i].map({ now < $0 || now - $0 >= 60_000 }) ?? true {
            guard let p = ctx.reader.withHeldBytes(files[i], { parsePressure($0) }) else {
                absentAt[i] = now
                continue
            }
            absentAt[i] = nil
            // node_exporter converts microseconds with two divisions; the same arithmetic gives the same bits.
            if resource != "irq", let some = p.some {
                ctx.observation.counter(Self.waiting[i], .empty, some / 1000 / 1000)
                any = true
            }
            if resource != "cpu", let full = p.full {
                ctx.observation.counter(Self.stalled[i], .empty, full / 1000 / 1000)
                any = true
            }
        }
        return any ? .ok : .noData("no /proc/pressure (kernel without PSI)")
    }
}
