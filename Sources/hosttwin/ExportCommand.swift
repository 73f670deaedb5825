import ArgumentParser
import Foundation
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin export`: stored samples as Prometheus text with millisecond timestamps — what `import` reads.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write stored samples as Prometheus text with timestamps (the input of `import`).",
        discussion: "Values are written in their shortest exact form, so export then import reproduces every sample bit for bit."
    )
    @OptionGroup var store: StoreOptions
    @Option(help: ArgumentHelp("Only metric names matching this regular expression (anchored).", valueName: "NAME_REGEX")) var match: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Start time.", valueName: "TIME")) var from: String = "-1h"
    @Option(parsing: .unconditional, help: ArgumentHelp("End time.", valueName: "TIME")) var to: String = "now"
    @Flag(help: "Add the job and instance labels the Prometheus API shows (job=\"node\", instance = host), for a Prometheus that is to answer alike.")
    var scrapeLabels = false

    func run() throws {
        let (a, b) = (try parseTime(from, "--from"), try parseTime(to, "--to"))
        guard a <= b else { throw CLIError("--from is after --to") }
        let s = try store.openForReading()
        let list = try s.series(matching: match)
        let scrape = scrapeLabels ? ScrapeLabels().resolved(s) : nil
        var out = ""
        var lastType: [String: Bool] = [:]
        // A few series at a time: a week of one 1 s series is 600k samples in memory.
        for start in stride(from: 0, to: list.count, by: 8) {
            let part = Array(list[start..<min(start + 8, list.count)])
            let data = try s.samples(ids: part.map(\.id), from: a, to: b)
            for info in part {
                guard let samples = data[info.id], !samples.isEmpty else { continue }
                if lastType.updateValue(true, forKey: info.key.metric) == nil, info.type != .untyped {
                    out += "# TYPE \(info.key.metric) \(info.type.rawValue)\n"
                }
                var key = info.key
                if let scrape {
                    var pairs = key.labels.pairs
                    scrape.add(to: &pairs)
                    key = SeriesKey(key.metric, Labels(pairs))
                }
                let name = key.description
                for (t, v) in samples {
                    out += name
                    out += " "
                    out += v.isNaN ? "NaN" : v == .infinity ? "+Inf" : v == -.infinity ? "-Inf" : "\(v)"
                    out += " \(t)\n"
                }
                if out.utf8.count > 1 << 20 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
