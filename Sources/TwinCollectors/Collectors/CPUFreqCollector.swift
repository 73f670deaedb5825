import TwinCore

/// node_exporter's cpufreq collector and the sysfs half of its cpu collector
/// (`/sys/devices/system/cpu`): current, minimum and maximum frequency per CPU, the scaling governor,
/// thermal throttle counts per core and per package, and the isolated CPUs.
public final class CPUFreqCollector: Collector {
    public let name = "cpufreq"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("devices/system/cpu")
        guard let names = ctx.entries(base) else { return .noData("no /sys/devices/system/cpu") }
        var any = false
        var cores = Set<String>(), packages = Set<String>()
        for name in names {
            guard let n = name.dropPrefixString("cpu"), !n.isEmpty, n.allSatisfy(\.isNumber) else { continue }
            let dir = base + "/" + name
            // One directory read tells which of cpufreq and thermal_throttle this CPU has (VMs: neither).
            guard let present = ctx.reader.list(dir) else { continue }
            let hasFreq = present.contains("cpufreq"), hasThrottle = present.contains("thermal_throttle")
            guard hasFreq || hasThrottle else { continue }
            let cpu = Labels(["cpu": n])
            let freq = dir + "/cpufreq/"
            func hertz(_ file: String, _ metric: String) {
                guard hasFreq else { return }
                if let khz = ctx.number(freq + file) { ctx.observation.add(metric, cpu, khz * 1000); any = true }
            }
            hertz("cpuinfo_cur_freq", "node_cpu_frequency_hertz")
            hertz("cpuinfo_max_freq", "node_cpu_frequency_max_hertz")
            hertz("cpuinfo_min_freq", "node_cpu_frequency_min_hertz")
            hertz("scaling_cur_freq", "node_cpu_scaling_frequency_hertz")
            hertz("scaling_max_freq", "node_cpu_scaling_frequency_max_hertz")
            hertz("scaling_min_freq", "node_cpu_scaling_frequency_min_hertz")
            if hasFreq, let current = ctx.text(freq + "scaling_governor"),
               let available = ctx.text(freq + "scaling_available_governors") {
                for g in available.split(separator: " ") {
                    ctx.observation.add("node_cpu_scaling_governor", Labels(["cpu": n, "governor": String(g)]), g == current ? 1 : 0)
                }
            }
            // Throttle counts are per core and per package; every CPU of one repeats them. The topology
            // is read only where the counters exist (Intel CPUs with thermal_throttle).
            guard hasThrottle else { continue }
            let coreCount = ctx.number(dir + "/thermal_throttle/core_throttle_count")
            let packageCount = ctx.number(dir + "/thermal_throttle/package_throttle_count")
            guard coreCount != nil || packageCount != nil,
                  let package = ctx.text(dir + "/topology/physical_package_id"), let core = ctx.text(dir + "/topology/core_id") else { continue }
            if let c = coreCount, cores.insert(package + "/" + core).inserted {
                ctx.observation.counter("node_cpu_core_throttles_total", Labels(["core": core, "package": package]), c)
                any = true
            }
            if let c = packageCount, packages.insert(package).inserted {
                ctx.observation.counter("node_cpu_package_throttles_total", Labels(["package": package]), c)
                any = true
            }
        }
        if let isolated = ctx.text(base + "/isolated").flatMap(parseCPUList) {
            for cpu in isolated { ctx.observation.add("node_cpu_isolated", Labels(["cpu": String(cpu)]), 1) }
            any = any || !isolated.isEmpty
        }
        return any ? .ok : .noData("no cpufreq or thermal throttle data")
    }
}
