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

/// How far the collectors outside the essential set are slowed to keep the collection within its CPU
/// budget: 1, 5 or 15 times their interval. Pure: the collection loop feeds it what the budget saw.
///
/// When the budget held changes back in the last 10 s, a step up (at most every 30 s); after 5 minutes
/// without, a step back. The least valuable observations give way to the changes of processes and
/// sockets. If a minute at 15 times still leaves the ticks costing more than the whole budget, the
/// essential collectors and the store alone exceed it: the others stay at 15 times (going back to their
/// intervals would spend more, not less) and ``essentialOverBudget`` says so until the ticks cost less.
public struct Relaxation: Sendable, Equatable {
    /// Times their interval the relaxable collectors wait between runs.
    public private(set) var factor: Int64 = 1
    /// Whether the ticks cost more than the budget with the others at their most relaxed.
    public private(set) var essentialOverBudget = false
    /// When `factor` last changed (ms since the epoch; 0: never, so the first step may come at once).
    private var changedAt: Int64 = 0

    public init() {}

    /// What changed at one step.
    public enum Change: Equatable, Sendable {
        /// `factor` moved.
        case factor
        /// The ticks were found to exceed the budget at the most relaxed factor.
        case essentialOverBudget
    }

    /// One step at tick `t`: `refusedRecently` (the budget held a change back in the last 10 s),
    /// `refusedLately` (in the last 5 minutes), the ticks' cost and the budget (CPU µs a second).
    public mutating func step(at t: Int64, refusedRecently: Bool, refusedLately: Bool, tickCost: Double, budget: Double) -> Change? {
        var change: Change?
        if factor == 15, t - changedAt >= 60_000 {
            // A tenth of hysteresis, so a cost at the budget does not flap.
            let over = tickCost >= (essentialOverBudget ? 0.9 : 1) * budget
            if over && !essentialOverBudget { change = .essentialOverBudget }
            essentialOverBudget = over
        }
        if refusedRecently, factor < 15, t - changedAt >= 30_000 {
            factor = factor == 1 ? 5 : 15
        } else if factor > 1, !refusedLately, t - changedAt >= 300_000 {
            factor = factor == 15 ? 5 : 1
            essentialOverBudget = false
        } else {
            return change
        }
        changedAt = t
        return .factor
    }
}
