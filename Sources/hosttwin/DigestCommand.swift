import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `hosttwin digest`: counts and a digest of one host's twin, equal at every tier that holds it whole.
struct DigestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Counts (series, samples, versions) and a digest of a host's twin up to a time, to check that a hub holds exactly what the agent stored.",
        discussion: "On an agent's (or `run`'s) store give no --host; on a hub's, --host NAME. The same twin gives the same figures everywhere: a sample or version missing, doubled or changed changes them."
    )
    @Option(help: ArgumentHelp("At a hub: the host (its series labelled host=NAME, its entities keyed NAME/...).", valueName: "NAME"))
    var host: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Up to this time (RFC 3339, Unix seconds, now, -5m).", valueName: "TIME"))
    var until: String = "now"
    @Option(help: ArgumentHelp("Also write each sample and version digested, one per line, to FILE (to find what differs).", valueName: "FILE"))
    var dump: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let t = try parseTime(until, "--until")
        var lines: [String] = []
        let d = try TwinDigest.compute(store: try store.openForReading(), host: host, until: t, dump: dump == nil ? nil : { lines.append($0) })
        if let dump { try (lines.joined(separator: "\n") + "\n").write(toFile: dump, atomically: true, encoding: .utf8) }
        if output.json { return try printJSON(d) }
        print("\(host ?? "this store's host") up to \(TwinTime.rfc3339(t)): \(d.series) series, \(d.samples) samples, \(d.versions) versions, digest \(d.digest)")
    }
}
