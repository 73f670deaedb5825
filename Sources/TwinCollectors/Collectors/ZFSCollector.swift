import TwinCore

/// node_exporter's zfs collector (`/proc/spl/kstat/zfs`): the module's statistics (ARC, ABD, dbuf,
/// DMU, dnode, fault management, vdev cache and mirror, prefetch, ZIL) as
/// `node_zfs_<section>_<statistic>`, and per pool its I/O, state and per-dataset counters.
public final class ZFSCollector: Collector {
    public let name = "zfs"
    /// kstat file → metric section.
    static let sections: [(file: String, section: String)] = [
        ("abdstats", "abd"), ("arcstats", "arc"), ("dbufstats", "dbuf"), ("dmu_tx", "dmu_tx"), ("dnodestats", "dnode"),
        ("fm", "fm"), ("vdev_cache_stats", "vdev_cache"), ("vdev_mirror_stats", "vdev_mirror"), ("xuio_stats", "xuio"),
        ("zfetchstats", "zfetch"), ("zil", "zil"),
    ]
    static let poolStates = ["degraded", "faulted", "offline", "online", "removed", "suspended", "unavail"]
    private var metricNames: [String: String] = [:]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.proc("spl/kstat/zfs")
        guard let entries = ctx.entries(base) else { return .noData("ZFS is not loaded") }
        var any = false
        for (file, section) in Self.sections {
            guard let text = ctx.reader.read(base + "/" + file) else { continue }
            for (stat, value) in parseZFSKstat(text).numbers {
                ctx.observation.add(metricName(section, stat), .empty, value)
                any = true
            }
        }
        let known = Set(Self.sections.map(\.file))
        for pool in entries where !known.contains(pool) {
            let dir = base + "/" + pool
            let poolLabel = Labels(["zpool": pool])
            if let state = ctx.text(dir + "/state") {
                for s in Self.poolStates {
                    ctx.observation.add("node_zfs_zpool_state", Labels(["state": s, "zpool": pool]), s == state.lowercased() ? 1 : 0)
                }
                any = true
            }
            if let io = ctx.reader.read(dir + "/io") {
                for (stat, value) in parseZFSIOKstat(io) { ctx.observation.add(metricName("zpool", stat), poolLabel, value) }
            }
            for objset in ctx.entries(dir) ?? [] where objset.hasPrefix("objset-") {
                guard let text = ctx.reader.read(dir + "/" + objset) else { continue }
                let kstat = parseZFSKstat(text)
                guard let dataset = kstat.strings["dataset_name"] else { continue }
                let l = Labels(["dataset": dataset, "zpool": pool])
                for (stat, value) in kstat.numbers { ctx.observation.add(metricName("zpool_dataset", stat), l, value) }
            }
        }
        return any ? .ok : .noData("no ZFS statistics")
    }

    /// `node_zfs_<section>_<stat>` with `-` made `_`; built once per name.
    private func metricName(_ section: String, _ stat: String) -> String {
        let key = section + "/" + stat
        if let name = metricNames[key] { return name }
        let name = "node_zfs_\(section)_" + String(stat.map { $0 == "-" ? "_" : $0 })
        if metricNames.count < 10_000 { metricNames[key] = name }
        return name
    }
}
