/// The `# HELP` text of every metric family HostTwin's collectors produce: what `/metrics` and
/// `/api/v1/metadata` show. Families that come in hundreds from one kernel table (meminfo, vmstat,
/// netstat, sockstat, interface counters) are described by rule; the rest by name. Texts of samples from
/// elsewhere (imported text, textfiles) are kept with the store instead.
public enum MetricHelp {
    /// The help text of `metric`, or nil for a family no collector produces.
    public static func text(for metric: String) -> String? {
        if let t = named[metric] { return t }
        func field(_ prefix: String) -> Substring? { metric.hasPrefix(prefix) ? metric.dropFirst(prefix.count) : nil }
        if let f = field("node_memory_") { return "Memory information field \(f)." }
        if let f = field("node_vmstat_") { return "/proc/vmstat information field \(f)." }
        if let f = field("node_netstat_") { return "Statistic \(f.replacingOccurrences(of: "_", with: ""))." }
        if let f = field("node_sockstat_"), let us = f.firstIndex(of: "_") {
            return "Number of \(f[..<us]) sockets in state \(f[f.index(after: us)...])."
        }
        if let f = field("node_network_receive_") ?? field("node_network_transmit_") {
            let direction = metric.hasPrefix("node_network_receive_") ? "receive" : "transmit"
            return "Network device statistic \(direction)_\(f.hasSuffix("_total") ? f.dropLast(6) : f)."
        }
        if let f = field("node_hwmon_") { return "Hardware monitor \(f.replacingOccurrences(of: "_", with: " "))." }
        if let f = field("node_power_supply_") { return "Power supply property \(f)." }
        if let f = field("node_nf_conntrack_stat_") { return "Connection-tracking statistic \(f), summed over CPUs." }
        if let f = field("node_timex_pps_") { return "Pulse-per-second signal: \(f.replacingOccurrences(of: "_", with: " ")) (adjtimex)." }
        // Storage-stack and hardware families read from one kernel table or sysfs class each.
        for (prefix, source) in tableSources {
            if let f = field(prefix) { return "\(source) statistic \(f.replacingOccurrences(of: "_", with: " "))." }
        }
        return nil
    }

    /// Family prefix → the table or sysfs class it comes from (ZFS kstats, XFS, NFS, ...).
    static let tableSources: [(String, String)] = [
        ("node_zfs_zpool_dataset_", "ZFS dataset (/proc/spl/kstat/zfs/<pool>/objset-*)"), ("node_zfs_zpool_", "ZFS pool (/proc/spl/kstat/zfs/<pool>)"),
        ("node_zfs_", "ZFS kstat (/proc/spl/kstat/zfs)"), ("node_xfs_", "XFS (/sys/fs/xfs/<device>/stats/stats)"),
        ("node_nfsd_", "NFS server (/proc/net/rpc/nfsd)"), ("node_nfs_", "NFS client (/proc/net/rpc/nfs)"),
        ("node_ipvs_", "IP Virtual Server (/proc/net/ip_vs)"), ("node_infiniband_", "InfiniBand (/sys/class/infiniband)"),
        ("node_fibrechannel_", "Fibre Channel (/sys/class/fc_host)"), ("node_bcache_", "bcache (/sys/fs/bcache)"),
        ("node_btrfs_", "btrfs (/sys/fs/btrfs)"), ("node_md_", "Software RAID (/proc/mdstat, /sys/block/md*/md)"),
        ("node_edac_", "EDAC memory controller (/sys/devices/system/edac/mc)"), ("node_tape_", "SCSI tape (/sys/class/scsi_tape)"),
        ("node_nvme_", "NVMe (/sys/class/nvme)"), ("node_rapl_", "RAPL energy (/sys/class/powercap)"),
        ("node_bonding_", "Bonding (/sys/class/net/bonding_masters)"), ("node_schedstat_", "Scheduler (/proc/schedstat)"),
        ("node_cpu_scaling_", "cpufreq scaling (/sys/devices/system/cpu/cpu*/cpufreq)"),
        ("node_cpu_frequency_", "cpufreq (/sys/devices/system/cpu/cpu*/cpufreq)"),
    ]

    static let named: [String: String] = [
        "node_cpu_core_throttles_total": "Number of times this CPU core has been throttled.",
        "node_cpu_package_throttles_total": "Number of times this CPU package has been throttled.",
        "node_cpu_isolated": "Whether each CPU is isolated (1) by the isolcpus boot parameter.",
        "node_dmi_info": "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
        // CPU, load, processes (/proc/stat, /proc/loadavg)
        "node_cpu_seconds_total": "Seconds the CPUs spent in each mode.",
        "node_cpu_guest_seconds_total": "Seconds the CPUs spent in guests (VMs) for each mode.",
        "node_context_switches_total": "Total number of context switches.",
        "node_forks_total": "Total number of forks.",
        "node_intr_total": "Total number of interrupts serviced.",
        "node_boot_time_seconds": "Node boot time, in unixtime.",
        "node_procs_running": "Number of processes in runnable state.",
        "node_procs_blocked": "Number of processes blocked waiting for I/O to complete.",
        "node_load1": "1m load average.",
        "node_load5": "5m load average.",
        "node_load15": "15m load average.",
        "node_processes_max_processes": "Number of max PIDs limit.",
        "node_processes_max_threads": "Limit of threads in the system.",
        "node_processes_pids": "Number of PIDs.",
        "node_processes_state": "Number of processes in each state.",
        "node_processes_threads": "Allocated threads in system.",
        // Pressure stall information
        "node_pressure_cpu_waiting_seconds_total": "Total time in seconds that processes have waited for CPU time.",
        "node_pressure_io_waiting_seconds_total": "Total time in seconds that processes have waited due to IO congestion.",
        "node_pressure_io_stalled_seconds_total": "Total time in seconds no process could make progress due to IO congestion.",
        "node_pressure_memory_waiting_seconds_total": "Total time in seconds that processes have waited for memory.",
        "node_pressure_memory_stalled_seconds_total": "Total time in seconds no process could make progress due to memory congestion.",
        "node_pressure_irq_stalled_seconds_total": "Total time in seconds no process could make progress due to IRQ congestion.",
        // Disks
        "node_disk_info": "Info of /sys/block/<block_device>.",
        "node_disk_reads_completed_total": "The total number of reads completed successfully.",
        "node_disk_reads_merged_total": "The total number of reads merged.",
        "node_disk_read_bytes_total": "The total number of bytes read successfully.",
        "node_disk_read_time_seconds_total": "The total number of seconds spent by all reads.",
        "node_disk_writes_completed_total": "The total number of writes completed successfully.",
        "node_disk_writes_merged_total": "The number of writes merged.",
        "node_disk_written_bytes_total": "The total number of bytes written successfully.",
        "node_disk_write_time_seconds_total": "This is the total number of seconds spent by all writes.",
        "node_disk_io_now": "The number of I/Os currently in progress.",
        "node_disk_io_time_seconds_total": "Total seconds spent doing I/Os.",
        "node_disk_io_time_weighted_seconds_total": "The weighted number of seconds spent doing I/Os.",
        "node_disk_discards_completed_total": "The total number of discards completed successfully.",
        "node_disk_discards_merged_total": "The total number of discards merged.",
        "node_disk_discarded_sectors_total": "The total number of sectors discarded successfully.",
        "node_disk_discard_time_seconds_total": "This is the total number of seconds spent by all discards.",
        "node_disk_flush_requests_total": "The total number of flush requests completed successfully.",
        "node_disk_flush_requests_time_seconds_total": "This is the total number of seconds spent by all flush requests.",
        // File systems
        "node_filesystem_avail_bytes": "Filesystem space available to non-root users in bytes.",
        "node_filesystem_free_bytes": "Filesystem free space in bytes.",
        "node_filesystem_size_bytes": "Filesystem size in bytes.",
        "node_filesystem_files": "Filesystem total file nodes.",
        "node_filesystem_files_free": "Filesystem total free file nodes.",
        "node_filesystem_readonly": "Filesystem read-only status.",
        "node_filesystem_device_error": "Whether an error occurred while getting statistics for the given device.",
        "node_filefd_allocated": "File descriptor statistics: allocated.",
        "node_filefd_maximum": "File descriptor statistics: maximum.",
        "node_entropy_available_bits": "Bits of available entropy.",
        "node_entropy_pool_size_bits": "Bits of entropy pool.",
        // Network interfaces (/sys/class/net)
        "node_network_up": "Value is 1 if operstate is 'up', 0 otherwise.",
        "node_network_info": "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        "node_network_mtu_bytes": "Network device property: mtu_bytes",
        "node_network_speed_bytes": "Network device property: speed_bytes",
        "node_network_carrier": "Network device property: carrier",
        "node_network_address_assign_type": "Network device property: address_assign_type",
        "node_network_carrier_changes_total": "Network device property: carrier_changes_total",
        "node_network_carrier_up_changes_total": "Network device property: carrier_up_changes_total",
        "node_network_carrier_down_changes_total": "Network device property: carrier_down_changes_total",
        "node_network_device_id": "Network device property: device_id",
        "node_network_dormant": "Network device property: dormant",
        "node_network_flags": "Network device property: flags",
        "node_network_iface_id": "Network device property: iface_id",
        "node_network_iface_link": "Network device property: iface_link",
        "node_network_iface_link_mode": "Network device property: iface_link_mode",
        "node_network_name_assign_type": "Network device property: name_assign_type",
        "node_network_net_dev_group": "Network device property: net_dev_group",
        "node_network_protocol_type": "Network device property: protocol_type",
        "node_network_transmit_queue_length": "Network device property: transmit_queue_length",
        "node_arp_entries": "ARP entries by device",
        "node_nf_conntrack_entries": "Number of currently allocated flow entries for connection tracking.",
        "node_nf_conntrack_entries_limit": "Maximum size of connection tracking table.",
        "node_softnet_processed_total": "Number of processed packets",
        "node_softnet_dropped_total": "Number of dropped packets",
        "node_softnet_times_squeezed_total": "Number of times processing packets ran out of quota",
        "node_softnet_cpu_collision_total": "Number of collision occur while obtaining device lock while transmitting",
        "node_softnet_received_rps_total": "Number of times cpu woken up received_rps",
        "node_softnet_flow_limit_count_total": "Number of times flow limit has been reached",
        "node_softnet_backlog_len": "Softnet backlog status",
        "node_udp_queues": "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        // Sensors
        "node_thermal_zone_temp": "Zone temperature in Celsius",
        "node_cooling_device_cur_state": "Current throttle state of the cooling device",
        "node_cooling_device_max_state": "Maximum throttle state of the cooling device",
        // Host identity and clock
        "node_uname_info": "Labeled system information as provided by the uname system call.",
        "node_os_info": "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        "node_os_version": "Metric containing the major.minor part of the OS version.",
        "node_selinux_enabled": "SELinux is enabled, 1 is true, 0 is false",
        "node_selinux_config_mode": "Configured SELinux enforcement mode",
        "node_selinux_current_mode": "Current SELinux enforcement mode",
        "node_time_seconds": "System time in seconds since epoch (1970).",
        "node_time_zone_offset_seconds": "System time zone offset in seconds.",
        "node_time_clocksource_available_info": "Available clocksources read from '/sys/devices/system/clocksource'.",
        "node_time_clocksource_current_info": "Current clocksource read from '/sys/devices/system/clocksource'.",
        "node_timex_offset_seconds": "Time offset in between local system and reference clock.",
        "node_timex_frequency_adjustment_ratio": "Local clock frequency adjustment.",
        "node_timex_maxerror_seconds": "Maximum error in seconds.",
        "node_timex_estimated_error_seconds": "Estimated error in seconds.",
        "node_timex_status": "Value of the status array bits.",
        "node_timex_loop_time_constant": "Phase-locked loop time constant.",
        "node_timex_tick_seconds": "Seconds between clock ticks.",
        "node_timex_tai_offset_seconds": "International Atomic Time (TAI) offset.",
        "node_timex_sync_status": "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
        "node_textfile_scrape_error": "1 if there was an error opening or reading a file, 0 otherwise",
        "node_textfile_mtime_seconds": "Unixtime mtime of textfiles successfully read.",
        "node_scrape_collector_duration_seconds": "node_exporter: Duration of a collector scrape.",
        "node_scrape_collector_success": "node_exporter: Whether a collector succeeded.",
        // The collecting process itself, as Prometheus clients report theirs
        "process_cpu_seconds_total": "Total user and system CPU time spent in seconds.",
        "process_open_fds": "Number of open file descriptors.",
        "process_max_fds": "Maximum number of open file descriptors.",
        "process_virtual_memory_bytes": "Virtual memory size in bytes.",
        "process_virtual_memory_max_bytes": "Maximum amount of virtual memory available in bytes.",
        "process_resident_memory_bytes": "Resident memory size in bytes.",
        "process_start_time_seconds": "Start time of the process since unix epoch in seconds.",
        // HostTwin's own families
        "hosttwin_process_cpu_seconds_total": "CPU time of one process (user and system), in seconds.",
        "hosttwin_process_resident_memory_bytes": "Resident memory of one process, in bytes.",
        "hosttwin_process_read_bytes_total": "Bytes one process read from storage.",
        "hosttwin_process_written_bytes_total": "Bytes one process wrote to storage.",
        "hosttwin_process_threads": "Threads of one process.",
        "hosttwin_listening_sockets": "Listening sockets on this host.",
        "hosttwin_tcp_established_connections": "Established TCP connections on this host.",
        "hosttwin_packages_installed": "Installed packages.",
        "hosttwin_filesystem_errors_total": "Errors a file system recorded (ext4 errors_count).",
        "hosttwin_filesystem_last_error_time_seconds": "When a file system recorded its last error, in unixtime.",
        "hosttwin_backup_present": "1 if a watched backup path exists, 0 otherwise.",
        "hosttwin_backup_newest_mtime_seconds": "Newest modification time under a watched backup path, in unixtime.",
        "hosttwin_backup_size_bytes": "Total size of a watched backup path, in bytes.",
        "hosttwin_backup_files": "Files under a watched backup path.",
        "hosttwin_services_failed": "Services in the failed state.",
        "hosttwin_user_sessions": "Logged-in user sessions.",
    ]
}
