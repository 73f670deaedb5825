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
