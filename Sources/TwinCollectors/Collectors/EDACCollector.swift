import TwinCore

/// node_exporter's edac collector: corrected and uncorrected memory errors per memory controller,
/// per chip-select row and per channel (`/sys/devices/system/edac/mc`).
public final class EDACCollector: Collector {
    public let name = "edac"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("devices/system/edac/mc")
        guard let controllers = ctx.entries(base)?.filter({ $0.hasPrefix("mc") }), !controllers.isEmpty else { return .noData("no EDAC memory controllers") }
        for mc in controllers {
            let controller = String(mc.dropFirst(2)), dir = base + "/" + mc
            let l = Labels(["controller": controller])
            if let v = ctx.number(dir + "/ce_count") { ctx.observation.counter("node_edac_correctable_errors_total", l, v) }
            if let v = ctx.number(dir + "/ue_count") { ctx.observation.counter("node_edac_uncorrectable_errors_total", l, v) }
            let unknown = Labels(["controller": controller, "csrow": "unknown"])
            if let v = ctx.number(dir + "/ce_noinfo_count") { ctx.observation.counter("node_edac_csrow_correctable_errors_total", unknown, v) }
            if let v = ctx.number(dir + "/ue_noinfo_count") { ctx.observation.counter("node_edac_csrow_uncorrectable_errors_total", unknown, v) }
            for row in ctx.entries(dir)?.filter({ $0.hasPrefix("csrow") }) ?? [] {
                let csrow = String(row.dropFirst(5)), rowDir = dir + "/" + row
                let rl = Labels(["controller": controller, "csrow": csrow])
                if let v = ctx.number(rowDir + "/ce_count") { ctx.observation.counter("node_edac_csrow_correctable_errors_total", rl, v) }
                if let v = ctx.number(rowDir + "/ue_count") { ctx.observation.counter("node_edac_csrow_uncorrectable_errors_total", rl, v) }
                for file in ctx.entries(rowDir) ?? [] where file.hasPrefix("ch") {
                    let kind: String
                    if file.hasSuffix("_ce_count") { kind = "correctable" } else if file.hasSuffix("_ue_count") { kind = "uncorrectable" } else { continue }
                    let channel = String(file.dropFirst(2).dropLast("_ce_count".count))
                    guard !channel.isEmpty, channel.allSatisfy(\.isNumber), let v = ctx.number(rowDir + "/" + file) else { continue }
                    let cl = Labels(["controller": controller, "csrow": csrow, "channel": channel,
                                     "dimm_label": ctx.text("\(rowDir)/ch\(channel)_dimm_label").map(Self.dimmLabel) ?? "unknown"])
                    ctx.observation.counter("node_edac_channel_\(kind)_errors_total", cl, v)
                }
            }
        }
        return .ok
    }

    /// The DIMM label as node_exporter writes it: `mc0csrow1channel0` → `mc0_csrow1_channel0`, `#` dropped.
    static func dimmLabel(_ raw: String) -> String {
        var out = ""
        var rest = Substring(raw.trimmingSuffixNewlines.trimmingSpaces)
        while let c = rest.first {
            if rest.hasPrefix("csrow") || rest.hasPrefix("channel") { out.append("_") }
            if c != "#" { out.append(c) }
            rest = rest.dropFirst()
        }
        return out
    }
}
