import ArgumentParser
import Foundation
import TwinCore
import TwinQuery
import TwinRules
import TwinRuntime
import TwinStorage

/// `hosttwin bench rules`: what evaluating the built-in rules (or given files) costs per collection tick.
struct BenchRules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "The cost of evaluating the rules per 1 s tick, over the last --seconds of a store.",
        discussion: "Evaluates the rules as `run` does — each group when its interval is due, at every tick of the window — on a read-only store, without storing alerts, and reports the time per tick (the budget is 1 ms for the built-in set) and per group evaluation. Conditions that keep their last result (forecast and anomaly: 5 min, restart loops: 1 min) are charged when they run; a restart-loop condition reads only what changed since its last look, and its whole window once per window. State conditions read the tick's entities, which `run` hands the rules; here they are read from the store outside the timing. An anomaly condition whose window ends before the detector states the store saved when it stopped (the last 3 minutes or so) learns the window's 6 hours of history again, as an API scan of a past window does, where `run` goes on from its states: with the default --seconds its figure is an upper bound; --seconds 120 times it as `run` pays it, but read from disk (a running twin's are on its `/metrics`, `hosttwin_rule_group_evaluation_seconds_total`)."
    )
    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("rules"), help: ArgumentHelp("Rule files instead of the built-in set (repeatable).", valueName: "FILE")) var files: [String] = []
    @Option(help: "Ticks of the window (the store's last ones).") var seconds = 300
    @Option(help: "Passes over the window (the median pass is reported).") var runs = 3
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable {
        var ticks: Int
        var rules: Int
        var perTickMicros: Double
        var groups: [Group]
        /// Each rule's share of a tick (µs), costliest first.
        var costliest: [Rule]
        /// Heap held at the end of the first pass and its peak, above the heap before it (bytes).
        var heldBytes = 0, peakBytes = 0
        struct Group: Encodable { var name: String; var interval: Double; var evaluations: Int; var meanMicros: Double; var maxMicros: Double }
        struct Rule: Encodable { var name: String; var perTickMicros: Double }
        enum CodingKeys: String, CodingKey { case ticks, rules, perTickMicros = "per_tick_us", groups, costliest }
    }

    func run() throws {
        let twin = try store.openForReading()
        guard let last = try twin.lastTick() else { throw CLIError("the store holds no ticks") }
        let files = try self.files.isEmpty ? [RuleFile.defaults()] : self.files.map(RuleFile.load)
        var passes: [Result] = []
        let heapBefore = MemoryFootprint.heapInUse
        var heapPeak = heapBefore, heapHeld = heapBefore
        for pass in 0..<max(runs, 1) {
            let recorded = RecordedSeries(keep: 3_600_000)
            var engine = PromQLEngine(source: LayeredSource(base: StoreSampleSource(store: twin, scrapeLabels: ScrapeLabels()), recorded: recorded))
            engine.timeout = 10_000
            let ev = RuleEvaluator(files: files, context: RuleContext(engine: engine, store: twin), recorded: recorded, defaultInterval: 5_000)
            // A running twin hands the rules each tick's entities; here they are read from the store, untimed.
            let kinds = Set(files.flatMap(\.rules).compactMap { r -> [EntityKind]? in
                if case .twin(.state(let kind, _, _, _)) = r.condition { return [kind, .host] }
                if case .twin(.compliance(let c)) = r.condition { return c.kinds }
                return nil
            }.flatMap { $0 })
            var spent: [[Double]] = Array(repeating: [], count: ev.groups.count)
            var byRule: [String: Double] = [:]
            let start = last - Int64(seconds - 1) * 1000
            var total = 0.0
            for k in 0..<seconds {
                let t = start + Int64(k) * 1000
                let due = ev.due(at: t)
                if !due.isEmpty, !kinds.isEmpty {
                    ev.context.snapshot = StateSnapshot(time: t, entities: Dictionary(grouping: try twin.state(at: t, kinds: Array(kinds)).map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) }, by: \.kind), complete: true)
                }
                for g in due {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    ev.evaluate(group: g, at: t)
                    let us = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000
                    spent[g].append(us)
                    total += us
                    for (i, r) in ev.groups[g].group.rules.enumerated() { byRule[r.name, default: 0] += ev.groups[g].health[i].duration * 1e6 }
                    if pass == 0 { heapPeak = max(heapPeak, MemoryFootprint.heapInUse) }
                }
            }
            ev.context.snapshot = nil
            if pass == 0 { heapHeld = MemoryFootprint.heapInUse }
            passes.append(Result(ticks: seconds, rules: files.reduce(0) { $0 + $1.rules.count }, perTickMicros: total / Double(seconds),
                                 groups: ev.groups.enumerated().map { i, g in
                                     Result.Group(name: g.group.name, interval: Double(g.interval) / 1000, evaluations: spent[i].count,
                                                  meanMicros: spent[i].isEmpty ? 0 : spent[i].reduce(0, +) / Double(spent[i].count), maxMicros: spent[i].max() ?? 0)
                                 }, costliest: byRule.map { Result.Rule(name: $0.key, perTickMicros: $0.value / Double(seconds)) }
                                    .sorted { $0.perTickMicros > $1.perTickMicros }))
        }
        var r = passes.sorted { $0.perTickMicros < $1.perTickMicros }[passes.count / 2]
        (r.heldBytes, r.peakBytes) = (heapHeld - heapBefore, heapPeak - heapBefore)
        if json { try printJSON(r); return }
        print(String(format: "rules: %d rules, %d ticks: %.0f µs per tick (median of %d passes; budget 1,000 µs)", r.rules, r.ticks, r.perTickMicros, passes.count))
        print(String(format: "heap of the first pass: %.2f MB held at its end, %.2f MB at its peak", Double(r.heldBytes) / 1e6, Double(r.peakBytes) / 1e6))
        printTable(["GROUP", "INTERVAL", "EVALUATIONS", "MEAN", "MAX"], r.groups.map {
            [$0.name, String(format: "%.0fs", $0.interval), String($0.evaluations), String(format: "%.0f µs", $0.meanMicros), String(format: "%.0f µs", $0.maxMicros)]
        })
        print("")
        printTable(["RULE", "PER TICK"], r.costliest.prefix(6).map { [$0.name, String(format: "%.0f µs", $0.perTickMicros)] })
    }
}
