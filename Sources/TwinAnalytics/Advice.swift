import Foundation
import TwinCore
import TwinQuery
import TwinStorage

/// The quietest slot ahead for maintenance, from the forecasts of the host's activity.
public struct MaintenanceWindow: Sendable, Encodable {
    public struct Load: Sendable, Encodable {
        public var signal: String
        /// Expected mean in the slot, in the signal's unit.
        public var expected: Double
        /// The signal's peak over the history, for scale.
        public var historyPeak: Double
        enum CodingKeys: String, CodingKey { case signal, expected, historyPeak = "history_peak" }
    }
    public var start: String
    public var end: String
    /// Mean of the signals' expected loads in the slot, each relative to its history peak (0-1).
    public var score: Double
    public var loads: [Load]
    public var basis: String
    /// "low" unless this time of day was among the quietest tenth of the history's slots on at least
    /// ``Advisor/confidentRegularity`` of its days; then "medium" with less than a week of history (the
    /// weekly cycle unseen) and "high" with a week or more.
    public var confidence: String
    /// Of the history's last `days` days, those on which this time of day was among the quietest tenth of
    /// all their slots.
    public var quietDays: Int
    public var days: Int
    enum CodingKeys: String, CodingKey { case start, end, score, loads, basis, confidence, quietDays = "quiet_days", days }
}

/// Advice that needs more history than the store holds.
public struct InsufficientHistory: Error, CustomStringConvertible {
    public var stored: Int64
    public var needed: Int64
    public var what: String
    public var description: String {
        "\(what) needs \(Advisor.formatDuration(needed)) of history; the store holds \(Advisor.formatDuration(stored)) (run `hosttwin run` longer)"
    }
}

/// One recommendation with the evidence behind it and how far to trust it.
public struct Advice: Sendable, Encodable {
    public var topic: String
    public var recommendation: String
    /// What was seen, over the span actually stored (not merely the span asked for).
    public var evidence: String
    /// "low", "medium" or "high": for sizing, how much history stood behind it (under 3 days, under 7,
    /// 7 or more); for warnings, how direct the observation is.
    public var confidence: String
}

public enum Advisor {
    /// The activity signals a maintenance window should avoid: busy CPU (cores), network and disk
    /// throughput (bytes per second), disk busy time (share of a second).
    static let signals: [(String, String)] = [
        ("cpu busy (cores)", #"sum(rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[5m]))"#),
        ("network (bytes/s)", "sum(rate(node_network_receive_bytes_total[5m])) + sum(rate(node_network_transmit_bytes_total[5m]))"),
        ("disk (bytes/s)", "sum(rate(node_disk_read_bytes_total[5m])) + sum(rate(node_disk_written_bytes_total[5m]))"),
    ]

    /// History a maintenance window needs: two days, so that the forecasts know the daily cycle.
    public static let maintenanceHistory: Int64 = 2 * 86_400_000
    /// The share of the history's days on which the chosen time of day must have been among the quietest
    /// tenth of the history's slots for a maintenance window to be reported with "high" confidence (``quietRegularity``).
    public static let confidentRegularity = 0.8
    /// History sizing advice (CPU, memory, swap) needs: a day.
    public static let sizingHistory: Int64 = 86_400_000

    /// How much of `history` before `now` the store actually holds.
    static func storedSpan(_ store: TwinStore, now: Int64, history: Int64) throws -> Int64 {
        guard let (first, _) = try store.sampleTimeRange() else { return 0 }
        return max(0, now - max(first, now - history))
    }

    /// The slot of `duration` within the next `within` whose forecast activity is lowest; throws
    /// ``InsufficientHistory`` when the store holds less than ``maintenanceHistory``.
    public static func maintenanceWindow(store: TwinStore, now: Int64, duration: Int64, within: Int64, history: Int64) throws -> MaintenanceWindow? {
        let stored = try storedSpan(store, now: now, history: history)
        guard stored >= maintenanceHistory else { throw InsufficientHistory(stored: stored, needed: maintenanceHistory, what: "a maintenance window") }
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        var series: [(String, SeriesForecast, Double)] = []
        var pasts: [[Double]] = []
        for (name, q) in signals {
            let (past, step) = try QueryForecaster.history(engine: engine, expr: try PromQLParser.parse(q), now: now, history: history)
            // The history's peak, for scale.
            guard let peak = past.first?.points.map(\.1).max(), peak > 0,
                  let f = try QueryForecaster.forecast(Array(past.prefix(1)), step: step, horizon: within, exhaustionBelow: nil).first else { continue }
            series.append((name, f, peak))
            pasts.append(ForecastHistory.regular(past[0].points, step: step, period: Int(86_400_000 / step)).map { max(0, $0) / peak })
        }
        guard let first = series.first else { return nil }
        let step = first.1.step
        let n = series.map { $0.1.points.count }.min() ?? 0
        let width = Int(max(1, duration / step))
        guard n >= width else { return nil }
        // Combined relative load per step, then the lowest sliding mean.
        let combined = (0..<n).map { i in series.reduce(0.0) { $0 + max(0, $1.1.points[i].mean) / $1.2 } / Double(series.count) }
        let best = quietestSlot(combined, width: width)
        let startT = first.1.last.t + step * Int64(best.start + 1)
        // How regularly this time of day was quiet: what the confidence rests on (a daily cycle, not noise).
        let length = pasts.map(\.count).min() ?? 0
        let combinedPast = (0..<length).map { i in pasts.reduce(0.0) { $0 + $1[$1.count - length + i] } / Double(pasts.count) }
        let regular = quietRegularity(combinedPast, period: Int(86_400_000 / step), width: width, start: length + best.start)
        let regularEnough = regular.days > 0 && Double(regular.quiet) >= confidentRegularity * Double(regular.days)
        let loads = series.map { name, f, peak in
            MaintenanceWindow.Load(signal: name, expected: f.points[best.start..<(best.start + width)].reduce(0) { $0 + $1.mean } / Double(width), historyPeak: peak)
        }
        return MaintenanceWindow(start: TwinTime.rfc3339(startT), end: TwinTime.rfc3339(startT + step * Int64(width)), score: best.mean,
                                 loads: loads, basis: "forecasts from the \(formatDuration(stored)) stored, \(TwinTime.rfc3339(now - stored)) to \(TwinTime.rfc3339(now)), at \(step / 1000) s (\(first.1.model) for CPU)",
                                 confidence: !regularEnough ? "low" : stored >= 7 * 86_400_000 ? "high" : "medium",
                                 quietDays: regular.quiet, days: regular.days)
    }

    /// The `width` consecutive steps of `load` with the lowest mean (the first such when tied): its start
    /// index and mean. `load` must hold at least `width` (≥ 1) values.
    public static func quietestSlot(_ load: [Double], width: Int) -> (start: Int, mean: Double) {
        precondition(width >= 1 && load.count >= width)
        var sum = load[0..<width].reduce(0, +)
        var best = (sum: sum, start: 0)
        for i in width..<load.count {
            sum += load[i] - load[i - width]
            if sum < best.sum { best = (sum, i - width + 1) }
        }
        return (best.start, best.sum / Double(width))
    }

    /// How regularly the time of day of a chosen slot was quiet in the past: over the last `days` days
    /// of `past`, on how many the slot of `width` steps at the same time of day as index `start` (an
    /// index into `past` continued into the future) was among the quietest tenth of all the slots of
    /// those days — as the window is judged against the days ahead. A daily cycle makes this high; noise
    /// around a level makes it about a tenth whatever the forecast says (no slot is reliably quiet), and
    /// so does a level that moved within the span.
    public static func quietRegularity(_ past: [Double], period: Int, width: Int, start: Int, days: Int = 7) -> (days: Int, quiet: Int) {
        guard period > 0, width >= 1, days >= 1, past.count >= period + width - 1 else { return (0, 0) }
        let offset = max(0, past.count - (days * period + width - 1))
        // Sliding slot sums for every start in the span.
        var sum = past[offset..<(offset + width)].reduce(0, +)
        var slots = [sum]
        for j in stride(from: offset + 1, through: past.count - width, by: 1) { sum += past[j + width - 1] - past[j - 1]; slots.append(sum) }
        let decile = slots.sorted()[slots.count / 10]
        var seen = 0, quiet = 0
        var j = ((start - offset) % period + period) % period
        while j < slots.count {
            seen += 1
            if slots[j] <= decile { quiet += 1 }
            j += period
        }
        return (seen, quiet)
    }

    /// Recommendations grounded in the stored history.
    public static func advise(store: TwinStore, now: Int64, history: Int64) throws -> [Advice] {
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        let step = QueryForecaster.step(history: history)
        var out: [Advice] = []
        func values(_ q: String) throws -> [Double] {
            guard case .matrix(let m) = try engine.range(try PromQLParser.parse(q), start: now - history, end: now, step: step) else { return [] }
            return m.first?.points.map(\.1) ?? []
        }
        func p95(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.sorted()[min(v.count - 1, Int(Double(v.count) * 0.95))] }
        let stored = try storedSpan(store, now: now, history: history)
        let span = "over the \(formatDuration(stored)) stored" + (stored < history - 60_000 ? " (of \(formatDuration(history)) asked)" : "")
        if stored < sizingHistory {
            out.append(Advice(topic: "history", recommendation: "too little history for sizing advice (CPU, memory and swap need \(formatDuration(sizingHistory)))",
                              evidence: "\(formatDuration(stored)) stored", confidence: "high"))
        } else {
            let confidence = stored < 3 * 86_400_000 ? "low" : stored < 7 * 86_400_000 ? "medium" : "high"
            // CPU: share of all cores busy.
            let cpu = try values(#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#)
            if let p = p95(cpu) {
                if p < 0.2 {
                    out.append(Advice(topic: "cpu", recommendation: "over-provisioned: fewer cores would do",
                                      evidence: String(format: "95th percentile of CPU busy %.1f %% %@ (%d points)", p * 100, span, cpu.count), confidence: confidence))
                } else if p > 0.85 {
                    out.append(Advice(topic: "cpu", recommendation: "saturated: add cores or move work away",
                                      evidence: String(format: "95th percentile of CPU busy %.1f %% %@", p * 100, span), confidence: confidence))
                }
            }
            // Memory: share used.
            let mem = try values("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes")
            if let p = p95(mem) {
                if p < 0.3 {
                    out.append(Advice(topic: "memory", recommendation: "over-provisioned: less memory would do",
                                      evidence: String(format: "95th percentile of memory used %.1f %% %@", p * 100, span), confidence: confidence))
                } else if p > 0.9 {
                    out.append(Advice(topic: "memory", recommendation: "under-provisioned: add memory or find what grows",
                                      evidence: String(format: "95th percentile of memory used %.1f %% %@", p * 100, span), confidence: confidence))
                }
            }
            // Swap thrash: pages swapped in and out at once.
            let swap = try values("rate(node_vmstat_pswpin[5m]) + rate(node_vmstat_pswpout[5m])")
            if let p = p95(swap), p > 100 {
                out.append(Advice(topic: "swap", recommendation: "swap thrash: the working set does not fit in memory",
                                  evidence: String(format: "95th percentile of %.0f pages/s swapped in and out %@", p, span), confidence: confidence))
            }
        }
        // Leaks, restart loops and filling filesystems: from the anomaly scan's early warnings.
        let warnings = try AnomalyScan.warnings(store: store, catalog: try store.seriesCatalog(), from: now - min(history, 86_400_000), to: now)
        for w in warnings where ["memory leak suspect", "restarting in a loop", "filesystem filling", "filesystem filling fast", "filesystem full"].contains(w.kind) {
            out.append(Advice(topic: w.kind, recommendation: w.kind.hasPrefix("filesystem f") ? "free space or grow \(w.subject) before it fills"
                                  : w.kind == "memory leak suspect" ? "watch or restart \(w.subject)" : "find why \(w.subject) keeps dying",
                              evidence: w.evidence,
                              confidence: ["memory leak suspect", "filesystem filling"].contains(w.kind) ? "medium" : "high"))
        }
        return out
    }

    /// 2 d 3 h, 5 h 10 min, 35 min, 20 s.
    public static func formatDuration(_ ms: Int64) -> String {
        let d = ms / 86_400_000, h = ms % 86_400_000 / 3_600_000, m = ms % 3_600_000 / 60_000
        if d > 0 { return h > 0 ? "\(d) d \(h) h" : "\(d) d" }
        if h > 0 { return m > 0 ? "\(h) h \(m) min" : "\(h) h" }
        return m > 0 ? "\(m) min" : "\(ms / 1000) s"
    }
}
