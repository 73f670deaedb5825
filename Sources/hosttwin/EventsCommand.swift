import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "What happened: entities appearing, changing, disappearing; starts, stops and gaps.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Start time.", valueName: "TIME")) var from: String = "-1h"
    @Option(parsing: .unconditional, help: ArgumentHelp("End time.", valueName: "TIME")) var to: String = "now"
    @Option(help: ArgumentHelp("Only these kinds (repeatable).", valueName: "KIND")) var kind: [String] = []
    @Option(help: "At most this many events.") var limit: Int = 1000

    func run() throws {
        let a = try parseTime(from, "--from"), b = try parseTime(to, "--to")
        let kinds = try parseKinds(kind).map(Set.init)
        let s = try store.openForReading()
        let events = try s.events(from: a, to: b, limit: limit).filter { e in kinds.map { k in e.kind.map(k.contains) ?? false } ?? true }
        if output.json { try printJSON(events.map(TwinEventJSON.init)); return }
        printTable(["TIME", "EVENT", "KIND", "KEY", "DETAIL"], events.map { e in
            [TwinTime.rfc3339(e.time), e.type.rawValue, e.kind?.rawValue ?? "-", e.key ?? "-",
             e.message ?? e.changes.map { "\($0.attribute): \(brief($0.old)) → \(brief($0.new))" }.joined(separator: "; ")]
        })
    }
}

/// A value on one table line: a file's text or a long command cut to its first line, at most 60 characters.
private func brief(_ v: AttributeValue?) -> String {
    guard let s = v?.description else { return "-" }
    let line = s.prefix { $0 != "\n" }
    return line.count > 60 || line.count < s.count ? String(line.prefix(60)) + "…" : s
}
