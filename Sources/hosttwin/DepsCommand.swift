import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinStorage

/// `hosttwin deps`: what talked to what across the fleet, as of any time.
struct DepsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deps",
        abstract: "The dependency graph across hosts from the connections the twins hold: client process → host:port:process.",
        discussion: "Peer addresses are resolved to fleet hosts by the addresses their own sockets use; loopback stays on its host; peers outside the fleet are shown by address. The same graph is served at /api/v1/twin/graph."
    )
    @Option(parsing: .unconditional, help: ArgumentHelp("As of TIME (RFC 3339, Unix seconds, now, -2h).", valueName: "TIME"))
    var at: String = "now"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let t = try parseTime(at, "--at")
        let s = try store.openForReading()
        let graph = DependencyGraph.build(FleetState(try s.state(at: t, kinds: [.host, .connections, .listeningPorts])))
        if output.json { return try printJSON(graph) }
        if graph.edges.isEmpty { print("no connections as of \(TwinTime.rfc3339(t))"); return }
        printTable(["FROM", "TO", "PROTO", "CONNECTIONS"], graph.edges.map { [$0.from, $0.to, $0.protocol, String($0.connections)] })
    }
}
