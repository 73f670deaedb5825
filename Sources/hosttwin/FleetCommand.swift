import ArgumentParser
import Foundation
import TwinCore
import TwinServer
import TwinStorage

/// `hosttwin fleet`: the hosts a hub holds, with how far behind each is.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "The hosts a hub holds: each host's last applied tick, its lag and the last contact.",
        discussion: "Reads a hub's data directory, or asks a running hub with --url. Lag is now minus the host's last applied tick, by the host's clock."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let hosts: [FleetHost]
        if let client = try remote.client() {
            struct Body: Decodable { var data: [String: [FleetHost]] }
            hosts = try JSONDecoder().decode(Body.self, from: try RemoteOptions.fetch(client, "/api/v1/fleet")).data["hosts"] ?? []
        } else {
            hosts = try FleetHost.list(try store.openForReading())
        }
        if output.json { try printJSON(hosts); return }
        if hosts.isEmpty { print("no hosts: no agent has pushed to this hub yet (hosttwin agent --push URL)"); return }
        printTable(["HOST", "TICKS", "LAST TICK", "LAG", "CLOCK OFFSET", "LAST CONTACT", "EPOCH"], hosts.map { h in
            [h.host, String(h.appliedThrough), h.lastTick ?? "-", h.lagSeconds.map { String(format: "%.1fs", $0) } ?? "-",
             h.clockOffsetSeconds.map { String(format: "%+.3fs", $0) } ?? "-", h.lastContact ?? "-", h.epoch]
        })
    }
}
