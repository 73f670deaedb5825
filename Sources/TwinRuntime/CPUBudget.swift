import TwinCore

/// The collection thread's CPU budget: a bucket of CPU time that fills at `share` of one core, up to ten
/// seconds' worth, and empties by what ticks and change-driven refreshes cost (thread CPU time). Ticks
/// always run; a refresh or fast poll between ticks runs only while the bucket is not empty. So refreshes
/// spend only what the ticks leave of the budget, and nothing when ticks alone use it up. Debt is kept to
/// ten seconds' worth, so a first tick that reads every package delays refreshes by tens of seconds at
/// most, not for the hour its whole cost would take to repay.
public struct CPUBudget: Sendable {
    /// Share of one core (0.002: 0.2 %).
    let share: Double
    private let capacity: Double
    /// CPU time left (µs); negative after ticks that cost more than the budget.
    private var tokens: Double
    private var last: Int64
    /// When a refresh was last refused for want of budget (ms since the epoch).
    private var lastRefused: Int64 = .min

    public init(share: Double, now: Int64) {
        self.share = share
        capacity = share * 10_000_000 // ten seconds' worth, in µs
        tokens = capacity
        last = now
    }

    private mutating func refill(_ t: Int64) {
        if t > last { tokens = min(capacity, tokens + share * Double(t - last) * 1000) }
        last = max(last, t)
    }

    /// Takes `micros` of CPU time spent at `t` (by a tick or a refresh).
    public mutating func charge(_ micros: Int64, at t: Int64) {
        refill(t)
        tokens = max(-capacity, tokens - Double(micros))
    }

    /// Whether a refresh may run at `t`; a refusal is remembered for ``health(changeDriven:)``.
    public mutating func allows(at t: Int64) -> Bool {
        refill(t)
        if tokens > 0 { return true }
        lastRefused = t
        return false
    }

    /// Whether a refresh was refused within `window` ms before `t`.
    public func refused(within window: Int64, at t: Int64) -> Bool { lastRefused != .min && t - lastRefused < window }

    /// The `capture` health line: how the twin observes, whether the budget held changes back in the last
    /// minute, and which collectors run less often to stay within it (`relaxed`, every `factor` runs).
    public func health(changeDriven: Bool, relaxed: [String] = [], factor: Int64 = 1) -> CollectorHealth {
        let budget = String(format: "%.2g %% of a core", share * 100)
        let slower = factor > 1 && !relaxed.isEmpty ? "; within it, \(relaxed.count) collectors run at \(factor) times their interval (\(relaxed.prefix(6).joined(separator: ", "))\(relaxed.count > 6 ? ", …" : ""))" : ""
        guard changeDriven else { return CollectorHealth(collector: "capture", status: .ok, message: "every tick (change-driven capture off)" + slower) }
        if refused(within: 60_000, at: last) {
            return CollectorHealth(collector: "capture", status: .ok, message: "change-driven capture limited by the CPU budget (\(budget)) in the last minute: changes wait for the tick" + slower)
        }
        return CollectorHealth(collector: "capture", status: .ok, message: "every tick, and between ticks on process events and fast polls of listeners (CPU budget \(budget))" + slower)
    }
}

/// How far the collectors outside the essential set are slowed to keep `run` within its CPU budget: 1, 5
/// or 15 times their interval. Pure: the collection loop feeds it what the budget and the process's CPU
/// clock saw.
///
/// The budget is the whole process's (ticks, refreshes, store, rules, detector, server), measured over the
/// last five minutes (``ProcessCost``). A step up (at most every 30 s) when the budget held a change back in
/// the last 10 s or the process costs more than the budget; a step back after 5 minutes at a factor without
/// either — but not to a factor found over the budget in the last hour, so a host whose twin fits only when
/// relaxed does not swing between the two every few minutes. If the process still costs more than the
/// budget after five minutes at 15 times, the essential collectors and the rest of `run` alone exceed it:
/// the others stay at 15 times (going back to their intervals would spend more, not less) and
/// ``essentialOverBudget`` says so until the process costs less.
public struct Relaxation: Sendable, Equatable {
    /// Times their interval the relaxable collectors wait between runs.
    public private(set) var factor: Int64 = 1
    /// Whether the process costs more than the budget with the others at their most relaxed.
    public private(set) var essentialOverBudget = false
    /// When `factor` last changed (ms since the epoch; 0: never, so the first step may come at once).
    private var changedAt: Int64 = 0
    /// When each factor was last left because the process cost more than the budget at it.
    private var overAt: [Int64: Int64] = [:]

    public init() {}

    /// What changed at one step.
    public enum Change: Equatable, Sendable {
        /// `factor` moved.
        case factor
        /// The process was found to exceed the budget at the most relaxed factor.
        case essentialOverBudget
    }

    /// One step at tick `t`: `refusedRecently` (the budget held a change back in the last 10 s),
    /// `refusedLately` (in the last 5 minutes), the process's CPU over the last five minutes (µs a second;
    /// nil while too little is known) and the budget (µs a second).
    public mutating func step(at t: Int64, refusedRecently: Bool, refusedLately: Bool, processCost: Double?, budget: Double) -> Change? {
        var change: Change?
        let over = processCost.map { $0 >= budget } ?? false
        if factor == 15, t - changedAt >= 300_000, let cost = processCost {
            // A tenth of hysteresis, so a cost at the budget does not flap.
            let stillOver = cost >= (essentialOverBudget ? 0.9 : 1) * budget
            if stillOver && !essentialOverBudget { change = .essentialOverBudget }
            essentialOverBudget = stillOver
        }
        let lower: Int64 = factor == 15 ? 5 : 1
        if refusedRecently || over, factor < 15, t - changedAt >= 30_000 {
            if over { overAt[factor] = t }
            factor = factor == 1 ? 5 : 15
        } else if factor > 1, !refusedLately, !over, t - changedAt >= 300_000, overAt[lower].map({ t - $0 >= 3_600_000 || t < $0 }) ?? true {
            factor = lower
            essentialOverBudget = false
        } else {
            return change
        }
        changedAt = t
        return .factor
    }
}

/// The whole process's CPU time per second over the last five minutes, from its CPU clock read at each
/// tick (a reading kept every 10 s). The seals, anomaly passes and SUID scans between are part of it.
public struct ProcessCost: Sendable {
    private var readings: [(t: Int64, cpu: Int64)] = []
    /// The cost at the last reading (µs a second); nil until 30 s are covered.
    public private(set) var perSecond: Double?
    public init() {}

    /// Takes the process's CPU time (µs) at `t` and returns its cost (µs a second) since the oldest reading
    /// within five minutes; nil until 30 s are covered.
    @discardableResult
    public mutating func note(cpuMicros: Int64, at t: Int64) -> Double? {
        if let last = readings.last, t < last.t { readings = [] } // the clock went back
        if readings.last.map({ t - $0.t >= 10_000 }) ?? true { readings.append((t, cpuMicros)) }
        if let cut = readings.firstIndex(where: { t - $0.t <= 300_000 }), cut > 0 { readings.removeFirst(cut) }
        perSecond = readings.first.flatMap { t - $0.t >= 30_000 ? Double(cpuMicros - $0.cpu) * 1000 / Double(t - $0.t) : nil }
        return perSecond
    }
}
