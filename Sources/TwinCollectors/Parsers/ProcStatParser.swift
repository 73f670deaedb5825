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

/// Scans `/proc/stat`: calls `cpu` for each `cpuN` line (index nil for the aggregate line) with its ten
/// time fields, and returns the kernel counters. Malformed cpu lines are skipped.
func scanProcStat(_ s: ByteScanner, cpu: (Int?, UnsafeBufferPointer<Double>) -> Void) -> ProcStat {
    var out = ProcStat()
    var sc = s
    var f: [Range<Int>] = []
    f.reserveCapacity(12)
    var ticks = [Double](repeating: 0, count: 10)
    while let line = sc.nextLine() {
        // Only cpu lines need every field; the others need two (the intr line has hundreds).
        if line.count >= 3, s.hasPrefix(line, "cpu") { sc.fields(line, into: &f) } else { firstTwoFields(s, line, into: &f) }
        guard let head = f.first else { continue }
        if s.hasPrefix(head, "cpu") {
            var index: Int?
            if head.count > 3 {
                var v = 0
                // At most 7 digits: a longer index is no CPU (and would overflow).
                for i in (head.lowerBound + 3)..<head.upperBound {
                    let c = s.b[i]
                    guard c >= 48, c <= 57, head.count <= 10 else { v = -1; break }
                    v = v * 10 + Int(c - 48)
                }
                if v < 0 { continue }
                index = v
            }
            guard f.count >= 5 else { continue }
            var ok = true
            for i in 0..<10 {
                if i + 1 < f.count { guard let v = s.number(f[i + 1]) else { ok = false; break }; ticks[i] = v } else { ticks[i] = 0 }
            }
            if ok { ticks.withUnsafeBufferPointer { cpu(index, $0) } }
            continue
        }
        guard f.count >= 2, let v = s.number(f[1]) else { continue }
        if s.equals(head, "intr") { out.interrupts = v }
        else if s.equals(head, "ctxt") { out.contextSwitches = v }
        else if s.equals(head, "btime") { out.bootTime = v }
        else if s.equals(head, "processes") { out.forks = v }
        else if s.equals(head, "procs_running") { out.procsRunning = v }
        else if s.equals(head, "procs_blocked") { out.procsBlocked = v }
    }
    return out
}

/// Parses `/proc/stat`. Lines it does not know are skipped; malformed cpu lines are skipped.
public func parseProcStat(_ text: String) -> ProcStat {
    text.withBytes { b in
        var cpus: [ProcStat.CPU] = []
        var out = scanProcStat(ByteScanner(b)) { cpus.append(.init(index: $0, ticks: Array($1))) }
        out.cpus = cpus
        return out
    }
}

/// The first two whitespace-separated fields of a line.
func firstTwoFields(_ s: ByteScanner, _ line: Range<Int>, into out: inout [Range<Int>]) {
    out.removeAll(keepingCapacity: true)
    var i = line.lowerBound
    while i < line.upperBound, out.count < 2 {
        while i < line.upperBound, s.b[i] == 32 || s.b[i] == 9 { i += 1 }
        if i >= line.upperBound { break }
        let start = i
        while i < line.upperBound, s.b[i] != 32, s.b[i] != 9 { i += 1 }
        out.append(start..<i)
    }
}
