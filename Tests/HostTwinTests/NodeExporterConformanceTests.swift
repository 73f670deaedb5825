import Foundation
import Testing
import TwinCollectors
import TwinCore

/// node_exporter compatibility, checked against its own end-to-end fixtures and golden output
/// (../shared/data/node-exporter-fixtures): for every family HostTwin exports that node_exporter also
/// exports, the lines (names, labels, values) must be the same. Families node_exporter has for these
/// fixtures that HostTwin leaves out are listed here with the reason.
@Suite struct NodeExporterConformanceTests {
    /// Families of the golden output that HostTwin does not export here, and why. Most come from
    /// collectors node_exporter 1.5 leaves off by default (its e2e run turns them on), or that are newer.
    static let leftOut: [String: String] = [
        "node_cpu_bug_info": "--collector.cpu.info (off by default in node_exporter 1.5): /proc/cpuinfo flags; the CPU model is the host entity's cpu_model attribute",
        "node_cpu_flag_info": "as node_cpu_bug_info",
        "node_cpu_info": "as node_cpu_bug_info",
        "node_cpu_frequency_hertz": "here from /proc/cpuinfo under --collector.cpu.info (off by default); HostTwin's cpufreq collector reports it from cpuinfo_cur_freq, which the fixture lacks",
        "node_cpu_vulnerabilities_info": "cpu_vulnerabilities collector: not in node_exporter 1.5",
        "node_memory_numa": "meminfo_numa collector: off by default in node_exporter 1.5",
        "node_disk_ata_rotation_rate_rpm": "from the fixture's udev database (collector/fixtures/udev), which shared/ does not hold",
        "node_disk_ata_write_cache": "udev database, as node_disk_ata_rotation_rate_rpm",
        "node_disk_ata_write_cache_enabled": "udev database, as node_disk_ata_rotation_rate_rpm",
        "node_disk_filesystem_info": "udev database, as node_disk_ata_rotation_rate_rpm",
        "node_disk_device_mapper_info": "udev database, as node_disk_ata_rotation_rate_rpm",
        "node_network": "the unpacked fixture has no /proc/net/dev (node_exporter's run read interface counters over netlink from the machine it ran on), and HostTwin reports interfaces from /proc/net/dev",
        "node_bcachefs": "bcachefs collector: not in node_exporter 1.5",
        "node_buddyinfo": "buddyinfo collector: off by default in node_exporter 1.5",
        "node_cgroups": "cgroups collector: off by default in node_exporter 1.5",
        "node_dmmultipath": "dmmultipath collector: not in node_exporter 1.5",
        "node_drbd": "drbd collector: off by default in node_exporter 1.5",
        "node_interrupts": "interrupts collector: off by default in node_exporter 1.5",
        "node_kernel_hung": "kernel_hung collector: not in node_exporter 1.5",
        "node_ksmd": "ksmd collector: off by default in node_exporter 1.5",
        "node_lnstat": "lnstat collector: off by default in node_exporter 1.5",
        "node_mountstats": "mountstats collector: off by default in node_exporter 1.5",
        "node_pcidevice": "pcidevice collector: not in node_exporter 1.5",
        "node_qdisc": "qdisc collector: off by default in node_exporter 1.5",
        "node_slabinfo": "slabinfo collector: off by default in node_exporter 1.5",
        "node_softirqs": "softirqs collector: off by default in node_exporter 1.5",
        "node_sysctl": "sysctl collector: off by default in node_exporter 1.5",
        "node_watchdog": "watchdog collector: not in node_exporter 1.5",
        "node_wifi": "wifi collector: off by default in node_exporter 1.5 (and read over netlink)",
        "node_xfrm": "xfrm collector: not in node_exporter 1.5",
        "node_zoneinfo": "zoneinfo collector: off by default in node_exporter 1.5",
        "node_os_info": "read from the fixture's usr/lib/os-release, which shared/ does not hold (HostTwin's os collector reads it on a host)",
        "node_os_version": "as node_os_info",
    ]

    /// Families both export whose lines cannot be compared here, and why.
    static let notCompared: [String: String] = [
        "node_disk_info": "model, path, serial, revision and wwn come from the fixture's udev database (collector/fixtures/udev), which shared/ does not hold",
        "node_scrape_collector_success": "one series per collector: HostTwin's collectors are its own, not node_exporter's",
        "node_scrape_collector_duration_seconds": "as node_scrape_collector_success (and timings)",
        "node_rapl_core_joules_total": "the path label is the sysfs path the exporter was given (collector/fixtures/sys/... in node_exporter's run)",
        "node_rapl_package_joules_total": "as node_rapl_core_joules_total",
        "node_os_info": "the fixture's os-release is not in shared/: the collector reads the test machine's",
        "node_os_version": "as node_os_info",
    ]

    /// Series node_exporter's e2e run leaves out by a collector flag of its test script.
    static func excludedByE2EFlags(_ series: String) -> Bool {
        series.hasPrefix("node_arp_entries{device=\"nope\"}") // --collector.arp.device-exclude=nope
    }

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
                     "node_nf_conntrack_stat_found", "node_udp_queues", "node_time_clocksource_current_info", "node_textfile_scrape_error",
                     "node_schedstat_running_seconds_total", "node_cpu_scaling_frequency_hertz", "node_cpu_scaling_governor",
                     "node_cpu_core_throttles_total", "node_cpu_isolated", "node_power_supply_info", "node_power_supply_energy_watthour",
                     "node_edac_channel_correctable_errors_total", "node_bonding_active", "node_nvme_namespace_used_bytes",
                     "node_tape_io_time_seconds_total", "node_fibrechannel_info", "node_infiniband_port_data_received_bytes_total",
                     "node_infiniband_legacy_data_received_bytes_total", "node_md_state", "node_md_blocks_synced", "node_md_degraded",
                     "node_zfs_arc_hits", "node_zfs_zpool_state", "node_zfs_zpool_dataset_nread", "node_xfs_vnode_release_total",
                     "node_ipvs_backend_weight", "node_nfs_requests_total", "node_nfsd_requests_total", "node_nfsd_rpc_errors_total",
                     "node_bcache_writeback_rate", "node_bcache_priority_stats_unused_percent", "node_btrfs_allocation_ratio",
                     "node_btrfs_commit_seconds_total", "node_dmi_info"] {
            #expect(compared.contains(must), "\(must) was not compared")
        }
        // Every node_ family of the golden output that we do not export must be listed with a reason.
        for family in golden.keys.sorted() where family.hasPrefix("node_") && ours[family] == nil {
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
