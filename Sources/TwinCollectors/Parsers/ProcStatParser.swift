/// `/proc/stat`: per-CPU time in USER_HZ ticks and the kernel's activity counters.
public struct ProcStat: Sendable, Equatable {
    /// One `cpuN` line: its index (nil for the aggregate `cpu` line) and its ten time fields in ticks
    /// (user nice system idle iowait irq softirq steal guest guest_nice; absent ones are 0).
    public struct CPU: Sendable, Equatable {
        public var index: Int?
        public var ticks: [Double]
    }
    public var cpus: [CPU] = []
    public var interrupts: Double?
    public var contextSwitches: Double?
    public var bootTime: Double?
    public var forks: Double?
    public var procsRunning: Double?
    public var procsBlocked: Double?
}

/// The CPU mode names of `/proc/stat`'s first eight time fields, as node_exporter labels them.
public let procStatModes = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]

/// Parses `/proc/stat`. Lines it does not know are skipped; malformed cpu lines are skipped.
public func parseProcStat(_ text: String) -> ProcStat {
    var out = ProcStat()
    for line in lines(text) {
        let f = line.fields
        guard let head = f.first else { continue }
        if head.hasPrefix("cpu") {
            let idx = head.dropFirst(3)
            let index: Int? = idx.isEmpty ? nil : Int(idx)
            if !idx.isEmpty && index == nil { continue }
            var ticks = [Double](repeating: 0, count: 10)
            var ok = f.count >= 5
            for i in 1..<min(f.count, 11) {
                guard let v = Double(f[i]) else { ok = false; break }
                ticks[i - 1] = v
            }
            if ok { out.cpus.append(.init(index: index, ticks: ticks)) }
            continue
        }
        guard f.count >= 2, let v = Double(f[1]) else { continue }
        switch head {
        case "intr": out.interrupts = v
        case "ctxt": out.contextSwitches = v
        case "btime": out.bootTime = v
        case "processes": out.forks = v
        case "procs_running": out.procsRunning = v
        case "procs_blocked": out.procsBlocked = v
        default: break
        }
    }
    return out
}
