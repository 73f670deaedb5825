import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin explain`: what moved with a series or a warning around a moment.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Rank the series and state changes that moved with a series or an early warning before --at.",
        discussion: """
        TARGET is a series (`node_pressure_cpu_waiting_seconds_total`, or `METRIC{label="value"}` with enough labels \
        to pick one), or an early warning as `hosttwin anomalies` lists it (its kind, subject or both, e.g. 'filesystem \
        filling fast' or '/var'), looked up among the warnings at --at. Every series of the host over --window before \
        --at is compared with the target (gauges as level and change per step, counters as rate), and so are the \
        processes (by name), services and listening ports that appeared, changed or went; the best |correlation| ranks \
        them, cut when the candidate moved only after the target, with processes and state changes ahead of \
        host-wide totals that merely add them up. Series of the target's own resource (its family, mount point or \
        device) are listed apart.
        """
    )
    @Argument(help: ArgumentHelp("A series or an early warning.", valueName: "TARGET")) var target: String
    @Option(parsing: .unconditional, help: ArgumentHelp("The moment to explain.", valueName: "TIME")) var at = "now"
    @Option(help: ArgumentHelp("How far back from --at to compare.", valueName: "DURATION")) var window = "15m"
    @Option(help: "Evidence to list.") var limit = 10
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let t = try parseTime(at, "--at")
        let w = try TwinTime.parseDuration(window)
        guard w >= 10_000 else { throw CLIError("--window must be at least 10s") }
        guard limit > 0 else { throw CLIError("--limit must be positive") }
        let s = try store.openForReading()
        let series = try Self.resolve(target, store: s, at: t)
        let e: Explanation
        do { e = try Explainer.explain(store: s, target: series, at: t, window: w, limit: limit) } catch let e as TwinError { throw CLIError("\(e)") }
        if output.json { try printJSON(e); return }
        print("\(e.target): moved from \(e.onset) (window \(e.from) → \(e.to), steps of \(PromNumber.format(e.stepSeconds)) s, \(e.candidates) candidates)")
        print("")
        if e.ranked.isEmpty { print("nothing moved with it (|correlation| ≥ 0.3)") } else {
            printTable(["RANK", "SCORE", "CORR", "LAG", "EVIDENCE", "DETAIL"], e.ranked.enumerated().map { i, item in
                [String(i + 1), String(format: "%.2f", item.score), String(format: "%+.2f", item.correlation), String(format: "%+.0f s", item.lagSeconds), item.subject, item.detail]
            })
        }
        if !e.sameResource.isEmpty {
            print("")
            print("its own resource, moving with it:")
            printTable(["CORR", "SERIES"], e.sameResource.prefix(5).map { [String(format: "%+.2f", $0.correlation), $0.subject] })
        }
    }

    /// The stored series TARGET names: an exact series, the one series of a metric matching the labels
    /// given, or the series of an early warning at `at` whose kind or subject contains TARGET.
    static func resolve(_ target: String, store: TwinStore, at: Int64) throws -> SeriesInfo {
        let catalog = try store.seriesCatalog()
        if let key = try? SeriesKey.parse(target) {
            let matching = catalog.filter { s in s.key.metric == key.metric && key.labels.allSatisfy { s.key.labels[$0.name] == $0.value } }
            if let exact = matching.first(where: { $0.key == key }) { return exact }
            if matching.count == 1 { return matching[0] }
            if matching.count > 1 {
                throw CLIError("\(target) matches \(matching.count) series; add labels to pick one: "
                               + matching.prefix(5).map(\.key.description).joined(separator: ", ") + (matching.count > 5 ? ", ..." : ""))
            }
        }
        let warnings = try AnomalyScan.warnings(store: store, catalog: catalog, from: at - 3_600_000, to: at)
        let needle = target.lowercased()
        guard let w = warnings.first(where: { "\($0.kind): \($0.subject)".lowercased().contains(needle) }) else {
            throw CLIError("\(target) is neither a stored series nor an early warning at \(TwinTime.rfc3339(at))"
                           + (warnings.isEmpty ? " (no warnings then)" : "; warnings then: " + warnings.prefix(5).map { "\($0.kind): \($0.subject)" }.joined(separator: "; ")))
        }
        // A restart loop is about processes, not a series: what restarts make is forks.
        let name = w.series ?? SeriesKey("node_forks_total", w.host.map { Labels(["host": $0]) } ?? .empty).description
        guard let key = try? SeriesKey.parse(name), let s = catalog.first(where: { $0.key == key }) else {
            throw CLIError("the warning \(w.kind): \(w.subject) has no stored series to explain (\(name))")
        }
        return s
    }
}
