import TwinCore

/// `/proc/stat`: per-CPU time by mode, plus the kernel counters of the same file (boot time, context
/// switches, forks, interrupts, running and blocked processes), read once per tick.
public final class CPUCollector: Collector {
    public let name = "cpu"
    /// USER_HZ: the unit of /proc/stat's time fields on every Linux architecture HostTwin supports.
    static let userHZ = 100.0
    private var cpuLabels: [Int: [Labels]] = [:]
    private var guestLabels: [Int: [Labels]] = [:]

    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var cpus = 0
        let parsed: ProcStat? = ctx.reader.withHeldBytes(ctx.paths.proc("stat")) { b in
            scanProcStat(ByteScanner(b)) { index, ticks in
                guard let index else { return }
                cpus += 1
                let labels = modeLabels(index)
                for m in 0..<8 { ctx.observation.counter("node_cpu_seconds_total", labels[m], ticks[m] / Self.userHZ) }
                let guest = guestModeLabels(index)
                ctx.observation.counter("node_cpu_guest_seconds_total", guest[0], ticks[8] / Self.userHZ)
                ctx.observation.counter("node_cpu_guest_seconds_total", guest[1], ticks[9] / Self.userHZ)
            }
        }
        guard let stat = parsed else { return .noData("\(ctx.paths.proc("stat")) missing") }
        if let v = stat.bootTime { ctx.observation.add("node_boot_time_seconds", .empty, v) }
        if let v = stat.contextSwitches { ctx.observation.counter("node_context_switches_total", .empty, v) }
        if let v = stat.forks { ctx.observation.counter("node_forks_total", .empty, v) }
        if let v = stat.interrupts { ctx.observation.counter("node_intr_total", .empty, v) }
        if let v = stat.procsRunning { ctx.observation.add("node_procs_running", .empty, v) }
        if let v = stat.procsBlocked { ctx.observation.add("node_procs_blocked", .empty, v) }
        return cpus == 0 ? .noData("no cpu lines in /proc/stat") : .ok
    }

    // Label sets are built once per CPU and reused every tick.
    private func modeLabels(_ cpu: Int) -> [Labels] {
        if let l = cpuLabels[cpu] { return l }
        let l = procStatModes.map { Labels(["cpu": String(cpu), "mode": $0]) }
        cpuLabels[cpu] = l
        return l
    }

    private func guestModeLabels(_ cpu: Int) -> [Labels] {
        if let l = guestLabels[cpu] { return l }
        let l = ["user", "nice"].map { Labels(["cpu": String(cpu), "mode": $0]) }
        guestLabels[cpu] = l
        return l
    }
}
