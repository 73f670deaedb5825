import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin maintenance-window`: the quietest slot ahead.
struct MaintenanceWindowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance-window",
        abstract: "The quietest slot of --duration within --within, from the forecasts of CPU, network and disk activity.",
        discussion: "Each signal is forecast from --history and taken relative to its peak over that history; the slot with the lowest mean of the three is reported with the load expected in it. Needs two days of stored history (the daily cycle). Confidence is high when the slot's time of day was among the quietest tenth of all the slots of the history's last days (up to 7) on at least 8 of 10 of them and a week is stored, medium when so with less than a week (the weekly cycle unseen), low otherwise (how often such windows really were quiet: `hosttwin bench maintenance`)."
    )
    @Option(help: ArgumentHelp("Length of the slot.", valueName: "DURATION")) var duration = "1h"
    @Option(help: ArgumentHelp("How far ahead to look.", valueName: "DURATION")) var within = "7d"
    @Option(help: ArgumentHelp("History the forecasts learn from.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let w: MaintenanceWindow?
        do {
            w = try Advisor.maintenanceWindow(store: try store.openForReading(), now: TwinTime.nowMillis(), duration: try TwinTime.parseDuration(duration),
                                              within: try TwinTime.parseDuration(within), history: try TwinTime.parseDuration(history))
        } catch let e as PromQLError { throw CLIError("\(e)") } catch let e as TwinError { throw CLIError("\(e)") } catch let e as InsufficientHistory { throw CLIError("\(e)") }
        guard let w else { throw CLIError("not enough stored activity to forecast (run `hosttwin run` longer, or shorten --history)") }
        if output.json { try printJSON(w); return }
        print("quietest \(duration) within \(within): \(w.start) → \(w.end)  (relative load \(String(format: "%.2f", w.score)) of the history's peaks)")
        printTable(["SIGNAL", "EXPECTED", "HISTORY PEAK"], w.loads.map { [$0.signal, PromNumber.format(($0.expected * 1000).rounded() / 1000), PromNumber.format(($0.historyPeak * 1000).rounded() / 1000)] })
        let why = w.confidence == "medium" ? " (less than a week: the weekly cycle is unseen)"
            : w.confidence == "low" ? " (no time of day is reliably quiet: a slot at random would do about as well)" : ""
        print(w.basis + "; this time of day was among the quietest tenth of the last \(w.days) days on \(w.quietDays) of them; confidence \(w.confidence)" + why)
    }
}
