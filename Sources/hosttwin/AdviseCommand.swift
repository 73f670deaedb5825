import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin advise`: recommendations grounded in the stored history.
struct AdviseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advise",
        abstract: "Recommendations from the stored history, each with its evidence: over- or under-provisioned CPU and memory, swap thrash, memory-leak suspects, restart loops, filesystems filling.",
        discussion: "CPU: 95th percentile of busy below 20 % (over-provisioned) or above 85 % (saturated). Memory: used below 30 % or above 90 %. Swap: over 100 pages/s in and out. Sizing advice needs a day of stored history; its confidence is low under 3 days, medium under 7, high from 7, and its evidence names the span actually stored. The rest comes from the early warnings of `hosttwin anomalies` over the last day."
    )
    @Option(help: ArgumentHelp("History to judge from.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let advice: [Advice]
        do { advice = try Advisor.advise(store: try store.openForReading(), now: TwinTime.nowMillis(), history: try TwinTime.parseDuration(history)) } catch let e as PromQLError {
            throw CLIError("\(e)")
        } catch let e as TwinError { throw CLIError("\(e)") }
        if output.json { try printJSON(advice); return }
        if advice.isEmpty { print("nothing to advise from the last \(history)"); return }
        printTable(["TOPIC", "CONFIDENCE", "RECOMMENDATION", "EVIDENCE"], advice.map { [$0.topic, $0.confidence, $0.recommendation, $0.evidence] })
    }
}
