import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore

struct CollectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collectors", abstract: "The collectors HostTwin has, with their default state and interval.")
    @OptionGroup var output: OutputOptions

    struct Item: Encodable { var name: String; var enabledByDefault: Bool; var intervalMs: Int64; var summary: String
        enum CodingKeys: String, CodingKey { case name, enabledByDefault = "enabled_by_default", intervalMs = "interval_ms", summary }
    }

    func run() throws {
        let items = CollectorRegistry.all.map { Item(name: $0.name, enabledByDefault: $0.enabledByDefault, intervalMs: $0.defaultInterval, summary: $0.summary) }
        if output.json { try printJSON(items); return }
        printTable(["NAME", "DEFAULT", "INTERVAL", "SOURCE"], items.map { [$0.name, $0.enabledByDefault ? "on" : "off", formatDuration($0.intervalMs), $0.summary] })
    }
}
