import Glibc
import TwinCore

/// Mounts (every line of mountinfo, as `mounts` entities) and the space and inodes of real file systems
/// (statfs, as node_exporter's `node_filesystem_*` and `filesystems` entities). A remount read-only shows as a
/// change of the mount's `ro` attribute and as `node_filesystem_readonly`.
public final class FilesystemCollector: Collector {
    public let name = "filesystem"
    public init() {}

    /// node_exporter's default excluded file system types.
    static let ignoredTypes: Set<String> = [
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
        "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay", "proc", "procfs", "pstore",
        "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "erofs", "sysfs", "tracefs",
    ]

    /// node_exporter's default excluded mount points: `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
    static func isIgnoredMountPoint(_ mp: String) -> Bool {
        for p in ["/dev", "/proc", "/sys"] where mp == p || mp.hasPrefix(p + "/") { return true }
        for p in ["/run/credentials/", "/var/lib/docker/", "/var/lib/containers/storage/"] where mp.hasPrefix(p) && mp.count > p.count { return true }
        return false
    }

    /// One real file system to statfs at every tick.
    struct Target {
        var mount: MountInfo
        var labels: Labels
        var path: String
    }

    /// The last mountinfo's bytes and what was derived from them: re-parsed only when the table changes.
    private var lastTable: [UInt8] = []
    /// The mount table read last, and when: on the live host it is read again only when the kernel flags a
    /// change (its formatting was about a twentieth of a quiet tick), and at least every minute.
    private var tablePath: String?
    private var tableRead: Int64 = .min
    private var mounts: [Entity] = []
    private var targets: [Target] = []

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let now = ctx.observation.timestamp
        // Whether the mount table differs from the last tick's (keeping the new bytes when it does).
        func readTable(_ rel: String) -> Bool? {
            let path = ctx.paths.proc(rel)
            let changed = ctx.reader.withHeldBytes(path) { b in
                if b.elementsEqual(lastTable) { return false }
                lastTable = Array(b)
                return true
            }
            if changed != nil { (tablePath, tableRead) = (path, now) }
            return changed
        }
        let changed: Bool?
        if let path = tablePath, now >= tableRead, now &- tableRead < 60_000, !ctx.reader.heldFileMayHaveChanged(path) {
            changed = false
        } else {
            changed = readTable("1/mountinfo") ?? readTable("self/mountinfo")
        }
        guard let changed else { return .noData("mountinfo missing") }
        if changed { rebuild(ctx.paths) }
        var filesystems: [Entity] = []
        filesystems.reserveCapacity(targets.count)
        for t in targets {
            let m = t.mount
            let ro = m.isReadOnly
            var vfs = statvfs()
            let ok = statvfs(t.path, &vfs) == 0
            ctx.observation.add("node_filesystem_device_error", t.labels, ok ? 0 : 1)
            ctx.observation.add("node_filesystem_readonly", t.labels, ro ? 1 : 0)
            var attrs: [String: AttributeValue] = [
                "mountpoint": .string(m.mountPoint), "device": .string(m.source), "fstype": .string(m.fsType), "ro": .bool(ro),
            ]
            if ok {
                let bs = Double(vfs.f_frsize > 0 ? vfs.f_frsize : vfs.f_bsize)
                let size = Double(vfs.f_blocks) * bs
                ctx.observation.add("node_filesystem_size_bytes", t.labels, size)
                ctx.observation.add("node_filesystem_free_bytes", t.labels, Double(vfs.f_bfree) * bs)
                ctx.observation.add("node_filesystem_avail_bytes", t.labels, Double(vfs.f_bavail) * bs)
                ctx.observation.add("node_filesystem_files", t.labels, Double(vfs.f_files))
                ctx.observation.add("node_filesystem_files_free", t.labels, Double(vfs.f_ffree))
                attrs["size_bytes"] = .int(Int64(saturating: size))
                attrs["inodes"] = .int(Int64(vfs.f_files))
            }
            filesystems.append(Entity(kind: .filesystems, key: m.mountPoint, attributes: attrs))
        }
        if changed || ctx.restate { ctx.observation.set(.mounts, mounts) }
        ctx.observation.set(.filesystems, filesystems)
        return .ok
    }

    private func rebuild(_ paths: HostPaths) {
        var byPoint: [String: Entity] = [:]
        var seen = Set<String>()
        targets = []
        let text = String(decoding: lastTable, as: UTF8.self)
        for m in parseMountinfo(text) {
            byPoint[m.mountPoint] = Entity(kind: .mounts, key: m.mountPoint, attributes: [
                "mountpoint": .string(m.mountPoint), "device": .string(m.source), "fstype": .string(m.fsType),
                "options": .string(m.options), "root": .string(m.root), "ro": .bool(m.isReadOnly),
            ])
            guard !Self.ignoredTypes.contains(m.fsType), !Self.isIgnoredMountPoint(m.mountPoint),
                  seen.insert(m.mountPoint).inserted else { continue }
            targets.append(Target(mount: m, labels: Labels(["device": m.source, "fstype": m.fsType, "mountpoint": m.mountPoint]),
                                  path: paths.root(m.mountPoint)))
        }
        mounts = Array(byPoint.values)
    }
}
