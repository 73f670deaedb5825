import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `hosttwin import FILE`: bulk-load Prometheus or OpenMetrics text with timestamps into a store.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Load samples from Prometheus/OpenMetrics text (with timestamps) into the store.",
        discussion: """
        Reads `name{labels} value [timestamp]` lines; `# TYPE` lines set metric types. Timestamps are integer \
        milliseconds (Prometheus) or seconds (OpenMetrics: fractional, or below 10^11); lines without one get the \
        import's start time. A sample that is not after the newest stored sample of its series is refused and \
        counted, so importing the same file twice stores it once. Malformed lines are skipped, counted and \
        reported with their line numbers (exit status 1). Use `-` to read standard input. Cannot run while \
        `hosttwin run` writes to the same --data-dir.
        """
    )

    @Argument(help: ArgumentHelp("Exposition text file, or - for standard input.", valueName: "FILE")) var file: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "No progress lines on standard error.") var quiet = false

    func run() throws {
        let path = file == "-" ? "/dev/stdin" : file
        guard FileManager.default.isReadableFile(atPath: path) else { throw CLIError("cannot read \(file)") }
        let total = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let policy = try retention.policy()
        if retention.diskCap != nil && store.storeURL != nil {
            throw CLIError("--disk-cap caps a data directory's files; with --store the tables are in PostgreSQL, whose disk its server manages")
        }
        let twinStore = try store.open()
        let writer = TwinWriter(store: twinStore, policy: policy, report: { FileHandle.standardError.write(Data("hosttwin import: \($0)\n".utf8)) })
        try writer.open()
        let importer = BulkImporter(writer: writer)
        let started = Date()
        var lastReport = started
        try importer.importFile(path) { done in
            guard !quiet, !output.json, Date().timeIntervalSince(lastReport) >= 2 else { return }
            lastReport = Date()
            let pct = total > 0 ? String(format: " (%.0f%%)", Double(done) * 100 / Double(total)) : ""
            let rate = Double(importer.stats.samples) / max(Date().timeIntervalSince(started), 0.001)
            FileHandle.standardError.write(Data("imported \(humanBytes(Double(done)))\(pct), \(importer.stats.samples) samples, \(Int(rate)) samples/s\n".utf8))
        }
        try writer.finish(now: TwinTime.nowMillis())
        let s = importer.stats
        let seconds = Date().timeIntervalSince(started)
        if output.json {
            struct Out: Encodable {
                var stats: BulkImporter.Stats
                var seconds: Double
                var samplesPerSecond: Double
                enum CodingKeys: String, CodingKey { case stats = "import", seconds, samplesPerSecond = "samples_per_second" }
            }
            try printJSON(Out(stats: s, seconds: seconds, samplesPerSecond: Double(s.samples) / max(seconds, 0.001)))
        } else {
            print("imported \(s.samples) samples of \(s.series) series from \(s.lines) lines in \(String(format: "%.1f", seconds)) s (\(Int(Double(s.samples) / max(seconds, 0.001))) samples/s)")
            if let a = s.minTime, let b = s.maxTime { print("time range: \(TwinTime.rfc3339(a)) to \(TwinTime.rfc3339(b))") }
            if s.rejected > 0 { print("refused \(s.rejected) samples not after their series' newest stored sample (already imported?)") }
            if s.badLines > 0 { print("skipped \(s.badLines) malformed lines") }
            for p in s.problems { print("  \(p)") }
        }
        if s.badLines > 0 { throw ExitCode(1) }
    }
}
