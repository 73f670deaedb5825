import TwinCore

/// node_exporter's dmi collector: the firmware's description of the machine (`/sys/class/dmi/id`):
/// BIOS, board, chassis and product as the labels of `node_dmi_info`. Files that cannot be read (the
/// serials need root) are left out.
public final class DMICollector: Collector {
    public let name = "dmi"
    /// sysfs file → label.
    static let fields: [(file: String, label: String)] = [
        ("bios_date", "bios_date"), ("bios_release", "bios_release"), ("bios_vendor", "bios_vendor"), ("bios_version", "bios_version"),
        ("board_asset_tag", "board_asset_tag"), ("board_name", "board_name"), ("board_serial", "board_serial"),
        ("board_vendor", "board_vendor"), ("board_version", "board_version"), ("chassis_asset_tag", "chassis_asset_tag"),
        ("chassis_serial", "chassis_serial"), ("chassis_vendor", "chassis_vendor"), ("chassis_version", "chassis_version"),
        ("product_family", "product_family"), ("product_name", "product_name"), ("product_serial", "product_serial"),
        ("product_sku", "product_sku"), ("product_uuid", "product_uuid"), ("product_version", "product_version"),
        ("sys_vendor", "system_vendor"),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let dir = ctx.paths.sys("class/dmi/id/")
        var labels: [String: String] = [:]
        for (file, label) in Self.fields { if let v = ctx.text(dir + file) { labels[label] = v } }
        guard !labels.isEmpty else { return .noData("no /sys/class/dmi/id") }
        ctx.observation.add("node_dmi_info", Labels(dictionary: labels), 1)
        return .ok
    }
}
