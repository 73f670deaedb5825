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
        discussion: "For each host: its cores, the highest busy cores and the lowest available memory its forecasts expect within --horizon (80 % bounds, fitted on --history). A job fits where both spares cover it; hosts are ranked by how many times it fits."
    )
    @Option(help: ArgumentHelp("Cores the job needs.", valueName: "N")) var cpu: Double = 1
    @Option(help: ArgumentHelp("Memory the job needs, e.g. 512M, 4G.", valueName: "BYTES")) var memory: String = "0"
    @Option(help: ArgumentHelp("How far ahead the job must fit.", valueName: "DURATION")) var horizon = "24h"
    @Option(help: ArgumentHelp("History to fit on.", valueName: "DURATION")) var history = "7d"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    /// `512M`, `4G`, `1.5T`, `1024` (bytes; powers of 1024).
    static func bytes(_ text: String) throws -> Double {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var t = text.uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        let scale = t.last.flatMap { units[$0] }
        if scale != nil { t.removeLast() }
        guard let n = Double(t), n >= 0, n.isFinite else { throw CLIError("--memory \(text): expected a size such as 512M or 4G") }
        return n * (scale ?? 1)
    }

    func run() throws {
        let need = try Self.bytes(memory)
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
    }
}
