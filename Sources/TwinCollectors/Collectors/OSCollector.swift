import TwinCore

/// node_exporter's os collector: `node_os_info` (value 1) labelled with `/etc/os-release` (or
/// `/usr/lib/os-release`), and `node_os_version`, the numeric major.minor of its `VERSION_ID`.
public final class OSCollector: Collector {
    public let name = "os"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.root("/etc/os-release")) ?? ctx.reader.read(ctx.paths.root("/usr/lib/os-release")) else {
            return .noData("no /etc/os-release")
        }
        let os = parseOSRelease(text)
        var info: [String: String] = [:]
        for (label, key) in [("build_id", "BUILD_ID"), ("id", "ID"), ("id_like", "ID_LIKE"), ("image_id", "IMAGE_ID"),
                             ("image_version", "IMAGE_VERSION"), ("name", "NAME"), ("pretty_name", "PRETTY_NAME"),
                             ("variant", "VARIANT"), ("variant_id", "VARIANT_ID"), ("version", "VERSION"),
                             ("version_codename", "VERSION_CODENAME"), ("version_id", "VERSION_ID")] {
            info[label] = os[key] ?? ""
        }
        ctx.observation.add("node_os_info", Labels(dictionary: info), 1)
        if let v = osVersionNumber(os["VERSION_ID"] ?? "") {
            ctx.observation.add("node_os_version", Labels(dictionary: ["id": info["id"]!, "id_like": info["id_like"]!, "name": info["name"]!]), v)
        }
        return .ok
    }
}
