import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin anomalies`: what looked anomalous on this host, and early warnings.
struct AnomaliesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anomalies",
        abstract: "Anomalies of the stored series in a window, the host-level anomaly rate, and early warnings of common failures.",
        discussion: """
        Every series is streamed minute by minute (gauges as their mean, counters as their rate) through the streaming \
        detector, which goes on from the state a running twin saved where it can (docs/ANALYTICS.md), else first \
        learns from --history before the window; alerts inside the window are listed with the \
        series most anomalous lately, the times the host turned anomalous (5 % of its series alerting within 10 \
        minutes), and warnings: sustained PSI pressure, error counters starting to rise, memory-leak suspects, \
        filesystems on course to fill within a day, processes restarting in a loop.
        """
    )
    @Option(parsing: .unconditional, help: ArgumentHelp("Start of the window.", valueName: "TIME")) var since = "-6h"
    @Option(parsing: .unconditional, help: ArgumentHelp("End of the window.", valueName: "TIME")) var to = "now"
    @Option(help: ArgumentHelp("History the detector learns from before the window.", valueName: "DURATION")) var history = "24h"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let a = try parseTime(since, "--since"), b = try parseTime(to, "--to")
        guard a < b else { throw CLIError("--since must be before --to") }
        let report: AnomalyReport
        do { report = try AnomalyScan.run(store: try store.openForReading(), to: b, window: b - a, history: try TwinTime.parseDuration(history)) } catch let e as TwinError {
            throw CLIError("\(e)")
        }
        if output.json { try printJSON(report); return }
        let peak = report.rate.max { $0.rate < $1.rate }
        print("\(report.series) series, \(report.from) → \(report.to): \(report.alerts.count) alerts; peak anomaly rate \(String(format: "%.1f %%", (peak?.rate ?? 0) * 100))\(peak.map { " at \($0.time)" } ?? "")")
        if !report.hostAnomalous.isEmpty { print("host turned anomalous at: \(report.hostAnomalous.joined(separator: ", "))") }
        print("")
        printTable(["LAST ALERT", "SERIES", "SCORE", "VALUE"], report.mostAnomalous.map { [$0.time, $0.series, String(format: "%.2f", $0.score), PromNumber.format($0.value)] })
        print("")
        if report.warnings.isEmpty { print("no early warnings") } else {
            printTable(["WARNING", "SUBJECT", "EVIDENCE"], report.warnings.map { [$0.kind, String($0.subject.prefix(60)), $0.evidence] })
        }
    }
}
