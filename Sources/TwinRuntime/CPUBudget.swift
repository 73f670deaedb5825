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
