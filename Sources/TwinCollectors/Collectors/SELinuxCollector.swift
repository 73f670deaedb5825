import TwinCore

/// node_exporter's selinux collector: whether SELinux is enabled (`/sys/fs/selinux`), and where it is,
/// the mode configured in `/etc/selinux/config` and the current one (1 enforcing, 0 permissive, -1 disabled).
public final class SELinuxCollector: Collector {
    public let name = "selinux"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let enforce = ctx.reader.read(ctx.paths.sys + "/fs/selinux/enforce").flatMap({ Double($0.trimmingSuffixNewlines) }) else {
            ctx.observation.add("node_selinux_enabled", .empty, 0)
            return .ok
        }
        ctx.observation.add("node_selinux_enabled", .empty, 1)
        ctx.observation.add("node_selinux_current_mode", .empty, enforce)
        let config = ctx.reader.read(ctx.paths.root("/etc/selinux/config")).map(parseOSRelease) ?? [:]
        let mode: Double = switch config["SELINUX"] { case "enforcing": 1; case "permissive": 0; default: -1 }
        ctx.observation.add("node_selinux_config_mode", .empty, mode)
        return .ok
    }
}
