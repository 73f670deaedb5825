import TwinCore

/// node_exporter's bonding collector: per bonding master (`/sys/class/net/bonding_masters`), the
/// number of slaves and of slaves whose MII status is up.
public final class BondingCollector: Collector {
    public let name = "bonding"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let net = ctx.paths.sys("class/net")
        guard let masters = ctx.text(net + "/bonding_masters") else { return .noData("no bonding masters") }
        for master in masters.split(separator: " ") {
            guard let slaves = ctx.text("\(net)/\(master)/bonding/slaves") else { continue }
            var total = 0.0, up = 0.0
            for slave in slaves.split(separator: " ") {
                total += 1
                if ctx.text("\(net)/\(master)/lower_\(slave)/bonding_slave/mii_status") == "up"
                    || ctx.text("\(net)/\(master)/slave_\(slave)/bonding_slave/mii_status") == "up" { up += 1 }
            }
            let l = Labels(["master": String(master)])
            ctx.observation.add("node_bonding_slaves", l, total)
            ctx.observation.add("node_bonding_active", l, up)
        }
        return .ok
    }
}
