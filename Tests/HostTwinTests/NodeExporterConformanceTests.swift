import Foundation
import Testing
import TwinCollectors
import TwinCore

/// node_exporter compatibility, checked against its own end-to-end fixtures and golden output
/// (../shared/data/node-exporter-fixtures): for every family HostTwin exports that node_exporter also
/// exports, the lines (names, labels, values) must be the same. Families node_exporter has for these
/// fixtures that HostTwin leaves out are listed here with the reason.
@Suite struct NodeExporterConformanceTests {
    /// Families a host twin shares with node_exporter (SOURCE.txt) that HostTwin does not export, and why.
    static let leftOut: [String: String] = [
        "node_cpu_bug_info": "CPU bug/flag/info families come from /proc/cpuinfo flags; host facts keep the CPU model as an attribute instead",
        "node_cpu_flag_info": "as node_cpu_bug_info",
        "node_cpu_info": "as node_cpu_bug_info: CPU model is the host entity's cpu_model attribute",
        "node_cpu_core_throttles_total": "cpufreq/thermal_throttle sysfs not collected yet",
        "node_cpu_package_throttles_total": "cpufreq/thermal_throttle sysfs not collected yet",
        "node_cpu_frequency_hertz": "cpufreq not collected yet (absent on the VMs HostTwin targets first)",
        "node_cpu_frequency_max_hertz": "cpufreq not collected yet",
        "node_cpu_frequency_min_hertz": "cpufreq not collected yet",
        "node_cpu_scaling_frequency_hertz": "cpufreq not collected yet",
        "node_cpu_scaling_frequency_max_hertz": "cpufreq not collected yet",
        "node_cpu_scaling_frequency_min_hertz": "cpufreq not collected yet",
        "node_cpu_scaling_governor": "cpufreq not collected yet",
        "node_cpu_isolated": "isolated CPU list not collected",
        "node_cpu_online": "CPU online state not collected",
        "node_memory_numa": "NUMA meminfo not collected",
        "node_disk_info": "comes from the udev database (--path.udev.data), which HostTwin does not read",
        "node_disk_ata_rotation_rate_rpm": "udev database",
        "node_disk_ata_write_cache": "udev database",
        "node_disk_ata_write_cache_enabled": "udev database",
        "node_disk_filesystem_info": "udev database",
        "node_disk_device_mapper_info": "udev database",
        "node_power_supply": "power_supply class not collected yet",
        "node_network": "sysfs net class: the unpacked fixture has eth0 as a stub file and no /proc/net/dev (node_exporter read those counters over netlink)",
        "node_cpu_vulnerabilities_info": "/sys/devices/system/cpu/vulnerabilities not collected yet",
        "node_os_info": "read from the fixture's usr/lib/os-release, which shared/ does not hold (HostTwin's os collector reads it on a host)",
        "node_os_version": "as node_os_info",
    ]

    /// Families both export whose lines cannot be compared here, and why.
    static let notCompared: [String: String] = [
        "node_disk_info": "model, path, serial, revision and wwn come from the fixture's udev database (collector/fixtures/udev), which shared/ does not hold",
        "node_scrape_collector_success": "one series per collector: HostTwin's collectors are its own, not node_exporter's",
        "node_scrape_collector_duration_seconds": "as node_scrape_collector_success (and timings)",
    ]

    /// Series node_exporter's e2e run leaves out by a collector flag of its test script.
    static func excludedByE2EFlags(_ series: String) -> Bool {
        series.hasPrefix("node_arp_entries{device=\"nope\"}") // --collector.arp.device-exclude=nope
    }

    /// The prefixes of SOURCE.txt's "families a host twin is expected to share".
    static let sharedPrefixes = [
        "node_cpu_", "node_memory_", "node_load", "node_pressure_", "node_vmstat_", "node_network_", "node_netstat_",
        "node_sockstat_", "node_disk_", "node_hwmon_", "node_thermal_zone_", "node_boot_time_seconds",
        "node_context_switches_total", "node_forks_total", "node_intr_total", "node_procs_", "node_filefd_",
        "node_entropy_", "node_power_supply_", "node_arp_", "node_softnet_", "node_nf_conntrack_", "node_udp_queues",
        "node_textfile_scrape_error", "node_uname_", "node_os_", "node_time_", "node_timex_", "node_selinux_",
    ]

    static func parseExposition(_ text: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = String(line[..<space])
            let name = String(series.prefix { $0 != "{" })
            out[name, default: [:]][series] = String(line[line.index(after: space)...])
        }
        return out
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func familiesSharedWithNodeExporterMatchItsGoldenOutput() throws {
        let shared = try #require(Fixtures.sharedData)
        let root = shared + "/node-exporter-fixtures"
        let golden = Self.parseExposition(try String(contentsOfFile: root + "/e2e-output.txt", encoding: .utf8))
        // The unpacked fixture stores sysfs symlinks as small files holding the link target; mirror the
        // tree with real links so the collectors see what a kernel shows.
        let sys = try temporaryDirectory("ne-sys")
        defer { try? FileManager.default.removeItem(atPath: sys) }
        try mirrorWithSymlinks(from: root + "/sys", to: sys)
        let sampler = Sampler(paths: HostPaths(proc: root + "/proc", sys: sys, root: root))
        let obs = sampler.tick(now: 1_800_000_000_000, force: true)
        let ours = Self.parseExposition(PrometheusText.render(obs.samples, types: obs.types))

        var compared: [String] = []
        for (family, all) in ours.sorted(by: { $0.key < $1.key }) {
            guard let expected = golden[family], Self.notCompared[family] == nil else { continue }
            let series = all.filter { !Self.excludedByE2EFlags($0.key) }
            compared.append(family)
            #expect(series == expected, "family \(family) differs from node_exporter's golden output")
        }
        // The core families must actually have been compared (a broken fixture path must not pass silently).
        for must in ["node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_load1", "node_pressure_io_stalled_seconds_total",
                     "node_vmstat_pgfault", "node_netstat_Tcp_InSegs", "node_sockstat_TCP_inuse", "node_disk_read_bytes_total",
                     "node_thermal_zone_temp", "node_boot_time_seconds", "node_procs_running", "node_filefd_allocated",
                     "node_entropy_available_bits", "node_processes_pids", "node_arp_entries", "node_softnet_processed_total",
                     "node_nf_conntrack_stat_found", "node_udp_queues", "node_time_clocksource_current_info", "node_textfile_scrape_error"] {
            #expect(compared.contains(must), "\(must) was not compared")
        }
        // Every shared family node_exporter has that we do not export must be listed with a reason.
        for family in golden.keys.sorted() where Self.sharedPrefixes.contains(where: family.hasPrefix) && ours[family] == nil {
            let listed = Self.leftOut.first { family == $0.key || family.hasPrefix($0.key + "_") }
            #expect(listed != nil && !(listed!.value.isEmpty), "node_exporter family \(family) is neither exported nor listed as left out")
        }
        print("node_exporter conformance: \(compared.count) families compared line by line")
    }
}

/// Recreates `src` under `dst`: directories as directories, files as symlinks to the originals, and
/// files that stand for symlinks (content `../something` naming an existing path) as real symlinks.
func mirrorWithSymlinks(from src: String, to dst: String) throws {
    let fm = FileManager.default
    guard let walker = fm.enumerator(atPath: src) else { return }
    while let rel = walker.nextObject() as? String {
        let s = src + "/" + rel, d = dst + "/" + rel
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: s, isDirectory: &isDir) else { continue }
        if isDir.boolValue {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            continue
        }
        if let attrs = try? fm.attributesOfItem(atPath: s), (attrs[.size] as? NSNumber)?.intValue ?? 0 < 256,
           let text = try? String(contentsOfFile: s, encoding: .utf8), text.hasPrefix("../"), !text.contains("\n") {
            let target = URL(fileURLWithPath: s).deletingLastPathComponent().appendingPathComponent(text).standardized.path
            let mirrored = dst + target.dropFirst(src.count)
            if fm.fileExists(atPath: target) {
                try fm.createSymbolicLink(atPath: d, withDestinationPath: mirrored)
                continue
            }
        }
        try fm.createSymbolicLink(atPath: d, withDestinationPath: s)
    }
}
