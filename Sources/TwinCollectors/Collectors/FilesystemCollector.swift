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

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("1/mountinfo")) ?? ctx.reader.read(ctx.paths.proc("self/mountinfo")) else {
            return .noData("mountinfo missing")
        }
        var mounts: [String: Entity] = [:]
        var filesystems: [String: Entity] = [:]
        for m in parseMountinfo(text) {
            let ro = m.isReadOnly
            mounts[m.mountPoint] = Entity(kind: .mounts, key: m.mountPoint, attributes: [
                "mountpoint": .string(m.mountPoint), "device": .string(m.source), "fstype": .string(m.fsType),
                "options": .string(m.options), "root": .string(m.root), "ro": .bool(ro),
            ])
            guard !Self.ignoredTypes.contains(m.fsType), !Self.isIgnoredMountPoint(m.mountPoint),
                  filesystems[m.mountPoint] == nil else { continue }
            let labels = Labels(["device": m.source, "fstype": m.fsType, "mountpoint": m.mountPoint])
            var vfs = statvfs()
            let ok = statvfs(ctx.paths.root(m.mountPoint), &vfs) == 0
            ctx.observation.add("node_filesystem_device_error", labels, ok ? 0 : 1)
            ctx.observation.add("node_filesystem_readonly", labels, ro ? 1 : 0)
            var attrs: [String: AttributeValue] = [
                "mountpoint": .string(m.mountPoint), "device": .string(m.source), "fstype": .string(m.fsType), "ro": .bool(ro),
            ]
            if ok {
                let bs = Double(vfs.f_frsize > 0 ? vfs.f_frsize : vfs.f_bsize)
                let size = Double(vfs.f_blocks) * bs
                ctx.observation.add("node_filesystem_size_bytes", labels, size)
                ctx.observation.add("node_filesystem_free_bytes", labels, Double(vfs.f_bfree) * bs)
                ctx.observation.add("node_filesystem_avail_bytes", labels, Double(vfs.f_bavail) * bs)
                ctx.observation.add("node_filesystem_files", labels, Double(vfs.f_files))
                ctx.observation.add("node_filesystem_files_free", labels, Double(vfs.f_ffree))
                attrs["size_bytes"] = .int(Int64(size))
                attrs["inodes"] = .int(Int64(vfs.f_files))
            }
            filesystems[m.mountPoint] = Entity(kind: .filesystems, key: m.mountPoint, attributes: attrs)
        }
        ctx.observation.set(.mounts, Array(mounts.values))
        ctx.observation.set(.filesystems, Array(filesystems.values))
        return .ok
    }
}
