import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin headroom`: hosts ranked by forecast spare capacity for a job.
struct HeadroomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "headroom",
        abstract: "Hosts ranked by forecast spare CPU and memory over a horizon: where a job of --cpu cores and --memory bytes fits.",
        discussion: "For each host: its cores, the highest busy cores and the lowest available memory its forecasts expect within --horizon (80 % bounds, fitted on --history; the bounds are used as far ahead as the host's history reaches back, the expected path beyond). A job fits where both spares cover it; hosts are ranked by how many times it fits."
    )
    @Option(help: ArgumentHelp("Cores the job needs.", valueName: "N")) var cpu: Double = 1
    @Option(help: ArgumentHelp("Memory the job needs, e.g. 512M, 4G.", valueName: "BYTES")) var memory: String = "0"
    @Option(help: ArgumentHelp("How far ahead the job must fit.", valueName: "DURATION")) var horizon = "24h"
    @Option(help: ArgumentHelp("History to fit on.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let need = try ByteSize.parse(memory, option: "--memory")
        guard cpu >= 0, cpu.isFinite else { throw CLIError("--cpu \(cpu): expected cores, e.g. 2 or 0.5") }
        let h = try TwinTime.parseDuration(history), z = try TwinTime.parseDuration(horizon)
        let s = try store.openForReading()
        let local = FleetState(try s.state(at: TwinTime.nowMillis(), kinds: [.host])).hosts.keys.first ?? "local"
        let hosts: [Headroom.Host]
        do { hosts = try Headroom.hosts(engine: PromQLEngine(source: StoreSampleSource(store: s)), now: TwinTime.nowMillis(), history: h, horizon: z, localName: local) } catch let e as PromQLError {
            throw CLIError("\(e)")
        }
        let ranked = Headroom.rank(hosts, cpu: cpu, memory: need)
        if output.json { return try printJSON(ranked) }
        if ranked.isEmpty { print("(no host with CPU and memory history in the last \(history))"); return }
        printTable(["HOST", "FITS", "TIMES", "SPARE CORES", "SPARE MEMORY", "CORES", "PEAK BUSY"], ranked.map { p in
            [p.host, p.fits ? "yes" : "no", String(format: "%.1f", p.score), String(format: "%.2f", p.spareCores),
             PromNumber.format((p.spareBytes / 1_048_576).rounded()) + " MiB", PromNumber.format(p.cores), String(format: "%.2f", p.peakBusyCores)]
        })
        let short = ranked.filter { $0.boundsCoverSeconds < z / 1000 }
        if !short.isEmpty {
            print("\nshort history: the 80 % bounds cover only " + short.map { "\($0.host) \(formatDuration($0.boundsCoverSeconds * 1000))" }.joined(separator: ", ")
                  + " of the \(horizon) horizon (as far ahead as their history reaches back); the expected path after that")
        }
    }
}
