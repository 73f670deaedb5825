import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore

struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Run the collectors once and print their samples in the Prometheus text format (node_exporter-compatible names).",
        discussion: "Point --root (or --proc-root/--sys-root) at a fixture tree to see what HostTwin makes of it. Rates need two reads: counters are shown as read."
    )
    @OptionGroup var hostPaths: HostPathOptions
    @Option(name: .customLong("collector"), help: ArgumentHelp("Only these collectors (repeatable).", valueName: "NAME")) var only: [String] = []
    @Flag(help: "Also print the entities observed, as JSON, after the samples.") var entities = false

    func run() throws {
        var selection = CollectorSelection()
        if !only.isEmpty {
            for e in CollectorRegistry.all { selection.enabled[e.name] = only.contains(e.name) }
        }
        do { try selection.validate() } catch { throw CLIError("\(error)") }
        for n in only where CollectorRegistry.entry(n) == nil { throw CLIError("unknown collector \(n)") }
        let sampler = Sampler(paths: hostPaths.paths, selection: selection)
        let obs = sampler.tick(now: TwinTime.nowMillis(), force: true)
        print(PrometheusText.render(obs.samples, types: obs.types), terminator: "")
        for h in obs.health where h.status != .ok {
            FileHandle.standardError.write("\(h.collector): \(h.status.rawValue) \(h.message ?? "")\n".data(using: .utf8)!)
        }
        if entities {
            try printJSON(obs.entities.sorted { $0.key < $1.key }.flatMap { $0.value })
        }
    }
}
