import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore

/// `hosttwin timeline`: what happened in a window, in order — an incident's story from the twin.
struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Forensics: process starts and exits, ports, connections, logins, package and service changes, alerts and the twin's own gaps, merged in time order.",
        discussion: "Reads the versioned state, so any past window can be told: `hosttwin timeline --from '2026-11-28 02:50' --to '2026-11-28 03:10'`. At a hub, --host keeps one host's story. `hosttwin ps --at T --tree` shows who was whose parent at a moment of it."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Start time.", valueName: "TIME")) var from: String = "-1h"
    @Option(parsing: .unconditional, help: ArgumentHelp("End time.", valueName: "TIME")) var to: String = "now"
    @Option(help: ArgumentHelp("At a hub: only this host.", valueName: "NAME")) var host: String?
    @Option(help: "At most this many lines.") var limit = 10_000
    @Flag(help: "Leave out process starts and exits (busy hosts start many).") var noProcesses = false

    func run() throws {
        let a = try parseTime(from, "--from"), b = try parseTime(to, "--to")
        guard a <= b else { throw CLIError("--from is after --to") }
        var lines = try Timeline.build(store: store.openForReading(), from: a, to: b, host: host, limit: limit)
        if noProcesses { lines.removeAll { $0.what.hasPrefix("process ") } }
        if output.json { try printJSON(lines); return }
        if lines.isEmpty { print("nothing happened between \(TwinTime.rfc3339(a)) and \(TwinTime.rfc3339(b))"); return }
        let hosts = lines.contains { $0.host != nil }
        printTable((hosts ? ["TIME", "HOST"] : ["TIME"]) + ["WHAT", "SUBJECT", "DETAIL"], lines.map { l in
            (hosts ? [TwinTime.rfc3339(l.time), l.host ?? "-"] : [TwinTime.rfc3339(l.time)]) + [l.what, l.subject, l.detail.count > 200 ? l.detail.prefix(199) + "…" : l.detail]
        })
    }
}
