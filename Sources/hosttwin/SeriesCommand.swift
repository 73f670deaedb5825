import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct SeriesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "series", abstract: "The stored metric series.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Only metric names matching this regular expression (anchored).", valueName: "NAME_REGEX")) var match: String?

    func run() throws {
        let s = try store.openForReading()
        let list = try s.series(matching: match)
        if output.json {
            try printJSON(list.map { SeriesJSON(metric: $0.key.metric, labels: $0.key.labels, type: $0.type.rawValue, series: $0.key.description) })
            return
        }
        for i in list { print(i.key.description) }
        FileHandle.standardError.write("\(list.count) series\n".data(using: .utf8)!)
    }
}

struct SeriesJSON: Encodable { var metric: String; var labels: Labels; var type: String; var series: String }
