import Glibc
import TwinCore

/// Host facts: hostname, kernel, OS, architecture, CPU model and count, memory size, machine id, boot
/// time — one `host` entity.
public final class HostCollector: Collector {
    public let name = "host"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        func read(_ p: String) -> String? { ctx.reader.read(p).map { String($0.trimmingSuffixNewlines) } }
        var a: [String: AttributeValue] = [:]
        if let h = read(ctx.paths.proc("sys/kernel/hostname")) { a["hostname"] = .string(h) }
        if let k = read(ctx.paths.proc("sys/kernel/osrelease")) { a["kernel"] = .string(k) }
        if let v = read(ctx.paths.proc("sys/kernel/version")) { a["kernel_version"] = .string(v) }
        let os = (ctx.reader.read(ctx.paths.root("/etc/os-release")) ?? ctx.reader.read(ctx.paths.root("/usr/lib/os-release"))).map(parseOSRelease) ?? [:]
        if let v = os["PRETTY_NAME"] { a["os"] = .string(v) }
        if let v = os["ID"] { a["os_id"] = .string(v) }
        if let v = os["VERSION_ID"] { a["os_version"] = .string(v) }
        if let cpu = ctx.reader.read(ctx.paths.proc("cpuinfo")).map(parseCPUInfo) {
            if let m = cpu.model { a["cpu_model"] = .string(m) }
            a["cpu_count"] = .int(Int64(cpu.count))
        }
        if let mem = ctx.reader.read(ctx.paths.proc("meminfo")).map(parseMeminfo),
           let total = mem.first(where: { $0.name == "MemTotal" }) {
            a["memory_bytes"] = .int(Int64(saturating: total.value))
        }
        if let id = read(ctx.paths.root("/etc/machine-id")) ?? read(ctx.paths.root("/var/lib/dbus/machine-id")) {
            a["machine_id"] = .string(id)
        }
        if let bt = ctx.reader.read(ctx.paths.proc("stat")).flatMap({ parseProcStat($0).bootTime }) {
            a["boot_time"] = .string(TwinTime.rfc3339(Int64(saturating: bt * 1000)))
        }
        if ctx.paths.root == "/" {
            var u = utsname()
            if uname(&u) == 0 {
                a["architecture"] = .string(withUnsafePointer(to: u.machine) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) }
                })
            }
        }
        guard !a.isEmpty else { return .noData("no host facts readable") }
        ctx.observation.set(.host, [Entity(kind: .host, key: "host", attributes: a)])
        return .ok
    }
}
