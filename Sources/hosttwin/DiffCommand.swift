import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

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
