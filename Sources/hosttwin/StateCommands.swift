import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// Parses `--kind` values.
func parseKinds(_ names: [String]) throws -> [EntityKind]? {
    if names.isEmpty { return nil }
    return try names.map { n in
        guard let k = EntityKind(rawValue: n) else {
            throw CLIError("unknown kind '\(n)'; kinds: \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return k
    }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "The whole host as it was at TIME: every entity of every kind with its attributes.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only these kinds (repeatable).", valueName: "KIND")) var kind: [String] = []

    func run() throws {
        let t = try parseTime(at.at, "--at")
        let kinds = try parseKinds(kind)
        let s = try store.openForReading()
        let versions = try s.state(at: t, kinds: kinds)
        if output.json {
            try printJSON(StateJSON(at: TwinTime.rfc3339(t), entities: versions))
            return
        }
        print("state at \(TwinTime.rfc3339(t)): \(versions.count) entities")
        var byKind: [EntityKind: Int] = [:]
        for v in versions { byKind[v.kind, default: 0] += 1 }
        printTable(["KIND", "COUNT"], byKind.sorted { $0.key < $1.key }.map { [$0.key.rawValue, String($0.value)] })
    }
}

struct StateJSON: Encodable {
    var at: String
    var entities: [EntityVersion]
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Entities that appeared, changed and disappeared between two times.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Start time.", valueName: "TIME")) var from: String
    @Option(parsing: .unconditional, help: ArgumentHelp("End time.", valueName: "TIME")) var to: String = "now"
    @Option(help: ArgumentHelp("Only these kinds (repeatable).", valueName: "KIND")) var kind: [String] = []

    func run() throws {
        let a = try parseTime(from, "--from"), b = try parseTime(to, "--to")
        guard a <= b else { throw CLIError("--from (\(TwinTime.rfc3339(a))) is after --to (\(TwinTime.rfc3339(b)))") }
        let kinds = try parseKinds(kind)
        let s = try store.openForReading()
        let d = try s.diff(from: a, to: b, kinds: kinds)
        if output.json {
            try printJSON(StateDiffJSON(d))
            return
        }
        print("diff \(TwinTime.rfc3339(a)) → \(TwinTime.rfc3339(b)): \(d.appeared.count) appeared, \(d.changed.count) changed, \(d.disappeared.count) disappeared")
        for v in d.appeared { print("+ \(v.kind.rawValue) \(v.key)  \(brief(v))") }
        for c in d.changed {
            print("~ \(c.kind.rawValue) \(c.key)")
            for ch in c.changes { print("    \(ch.attribute): \(ch.old?.description ?? "-") → \(ch.new?.description ?? "-")") }
        }
        for v in d.disappeared { print("- \(v.kind.rawValue) \(v.key)  \(brief(v))") }
    }

    func brief(_ v: EntityVersion) -> String {
        for k in ["command", "process", "name", "mountpoint"] { if let a = v.attributes[k] { return a.description } }
        return ""
    }
}

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
             e.message ?? e.changes.map { "\($0.attribute): \($0.old?.description ?? "-") → \($0.new?.description ?? "-")" }.joined(separator: "; ")]
        })
    }
}

