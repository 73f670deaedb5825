import Glibc
import TwinCore

/// node_exporter's uname collector: `node_uname_info` (value 1) labelled with what uname(2) reports.
/// Read from `/proc/sys/kernel` (the same strings), so fixture trees work; the machine name from uname(2).
public final class UnameCollector: Collector {
    public let name = "uname"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        func kernel(_ f: String) -> String? { ctx.reader.read(ctx.paths.proc("sys/kernel/" + f)).map { String($0.trimmingSuffixNewlines) } }
        guard let release = kernel("osrelease"), let nodename = kernel("hostname") else { return .noData("no /proc/sys/kernel/osrelease") }
        var u = utsname()
        let machine = uname(&u) == 0 ? withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } : ""
        ctx.observation.add("node_uname_info", Labels(dictionary: [
            "sysname": kernel("ostype") ?? "Linux", "release": release, "version": kernel("version") ?? "",
            "machine": machine, "nodename": nodename, "domainname": kernel("domainname") ?? "(none)",
        ]), 1)
        return .ok
    }
}
