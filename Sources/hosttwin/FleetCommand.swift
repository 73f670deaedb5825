import ArgumentParser
import Foundation
import TwinCore
import TwinServer
import TwinStorage

/// `hosttwin fleet`: the hosts a hub holds, with how far behind each is.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "The hosts a hub holds: each host's last applied tick, its lag and the last contact; with --warnings, hosts heading for trouble.",
        discussion: "Reads a hub's data directory, or asks a running hub with --url. Lag is now minus the host's last applied tick, by the host's clock. --warnings scans the last hour of every host (anomaly rate, sustained pressure, error counters rising, memory-leak suspects, filesystems filling within a day, processes restarting in a loop, silent hosts) and lists each flagged host with its evidence."
    )
    @Flag(help: "Also each host's anomaly rate and failover warnings with their evidence.") var warnings = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let hosts: [FleetHost]
        if let client = try remote.client() {
            struct Body: Decodable { var data: [String: [FleetHost]] }
            hosts = try JSONDecoder().decode(Body.self, from: try RemoteOptions.fetch(client, "/api/v1/fleet" + (warnings ? "?warnings=1" : ""))).data["hosts"] ?? []
        } else {
            hosts = try FleetHost.list(try store.openForReading(), health: warnings)
        }
        if output.json { try printJSON(hosts); return }
        if hosts.isEmpty { print("no hosts: no agent has pushed to this hub yet (hosttwin agent --push URL)"); return }
        let health = warnings ? ["ANOMALY RATE", "WARNINGS"] : []
        let columns = ["HOST", "DATACENTER", "TICKS", "BACKLOG", "LAST TICK", "LAG", "CLOCK OFFSET", "LAST CONTACT", "EPOCH"] + health
        printTable(columns, hosts.map { h -> [String] in
            let lag: String = h.lagSeconds.map { String(format: "%.1fs", $0) } ?? "-"
            let offset: String = h.clockOffsetSeconds.map { String(format: "%+.3fs", $0) } ?? "-"
            let backlog: String = h.backlogTicks.map { String($0) } ?? "-"
            // Epoch 0 with samples: a host that came by Prometheus remote_write (no agent, no ticks).
            let epoch = h.epoch == "0" && h.lastTick != nil ? "remote_write" : h.epoch
            var row: [String] = [h.host, h.datacenter ?? "-", String(h.appliedThrough), backlog, h.lastTick ?? "-", lag, offset, h.lastContact ?? "-", epoch]
            if warnings { row += [String(format: "%.1f %%", (h.anomalyRate ?? 0) * 100), String(h.warnings?.count ?? 0)] }
            return row
        })
        let flagged = hosts.flatMap { $0.warnings ?? [] }
        if warnings {
            print("")
            if flagged.isEmpty { print("no host is heading for trouble") } else {
                printTable(["HOST", "WARNING", "SUBJECT", "EVIDENCE"], flagged.map { [$0.host ?? "-", $0.kind, String($0.subject.prefix(60)), $0.evidence] })
            }
        }
    }
}
