import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin compare H1 H2`: how two hosts of a hub differ in state and resource profile.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "How two hosts differ: kernel, OS, packages and versions, services, listening ports, and resource profile.",
        discussion: "Reads a hub's store (hosts pushed by agents). State is compared as of --at; the profile is each host's average over the hour before it: CPU busy cores, memory used, load, network received, disk written."
    )
    @Argument(help: "The first host.") var left: String
    @Argument(help: "The second host.") var right: String
    @Option(parsing: .unconditional, help: ArgumentHelp("Compare as of TIME (RFC 3339, Unix seconds, now, -2h).", valueName: "TIME"))
    var at: String = "now"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let t = try parseTime(at, "--at")
        let s = try store.openForReading()
        let fleet = FleetState(try s.state(at: t))
        for h in [left, right] where fleet.hosts[h] == nil {
            throw CLIError("no host \(h) in this store as of \(TwinTime.rfc3339(t)); hosts: \(fleet.hosts.keys.sorted().joined(separator: ", "))")
        }
        let local = fleet.hosts.count == 1 ? fleet.hosts.keys.first! : "local"
        let profile = try HostComparison.profile(engine: PromQLEngine(source: StoreSampleSource(store: s)), at: t, left: left, right: right, localName: local)
        let c = HostComparison.compare(fleet, left, right, profile: profile)
        if output.json { return try printJSON(c) }
        print("\(left) and \(right) as of \(TwinTime.rfc3339(t)): alike " + c.alike.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        if c.differences.isEmpty { print("no differences in state") } else {
            printTable(["KIND", "ITEM", left.uppercased(), right.uppercased()], c.differences.map { [$0.kind, $0.item, $0.left ?? "-", $0.right ?? "-"] })
        }
        print("")
        printTable(["RESOURCE (1h AVERAGE)", left.uppercased(), right.uppercased()], c.profile.map { p in
            [p.resource, p.left.map { String(format: "%.4g", $0) } ?? "-", p.right.map { String(format: "%.4g", $0) } ?? "-"]
        })
    }
}
