import Synchronization

/// The last few minutes of every series the writer committed at its ticks, folded into minute points as
/// they come (min, max, sum, count, last, exactly as ``Rollup/points(_:step:)`` folds the same samples).
/// The anomaly monitor's passes and the anomaly rule read the minutes since the detectors' last save
/// every few minutes; from here they read no log segment and inflate no chunk row
/// (``TwinStore/aggregate(ids:from:to:step:cached:)`` answers from it where it covers the range exactly).
///
/// Only the ticks of ``TwinWriter/commit(_:health:)`` are folded. A store written any other way (a hub's
/// agents, an import, a bulk append) stops answering from here at the first such write, for good: its
/// series' minutes would be incomplete. Nothing here is durable; a new process starts empty and covers
/// the minutes from its first whole one.
final class RecentMinutes: Sendable {
    /// Finished minutes kept: a pass every 5 minutes reads back to the minute after the previous one's end
    /// (2 minutes settled before it), so 8 to 9 minutes; 12 leaves a margin for a late pass.
    static let kept = 12

    struct Minute {
        var t: Int64
        var ids: [Int64] = []
        var points: [RollupPoint] = []
    }

    struct Fold {
        var enabled = true
        /// The first minute every committed sample of which was folded (`.max`: none yet).
        var since = Int64.max
        /// The newest tick folded.
        var through = Int64.min
        /// Minutes before this are no longer held (dropped, or before `since`).
        var floor = Int64.max
        /// Finished minutes, oldest first.
        var done: [Minute] = []
        var current = Minute(t: .min)
        /// Series id → index in `current` + 1 (0: not in it), for ids below ``Head/denseLimit``.
        var slots: [Int32] = []
        var sparseSlots: [Int64: Int] = [:]
        /// The held points by series, built by the first read after a tick (a pass reads a batch of series
        /// at a time) and let go at the next tick.
        var bySeries: [Int64: [RollupPoint]]?

        mutating func add(_ t: Int64, ids: [Int64], values: [Double]) {
            bySeries = nil
            let m = floorDiv(t, StoragePolicy.minute) * StoragePolicy.minute
            if m != current.t { start(m, firstTick: t) }
            through = t
            for (id, v) in zip(ids, values) {
                let point = RollupPoint(t: m, min: v, max: v, sum: v, count: 1, last: v)
                if id >= 0, id < Head.denseLimit {
                    let i = Int(id)
                    if i < slots.count, slots[i] != 0 {
                        current.points[Int(slots[i]) - 1].merge(point)
                        continue
                    }
                    if i >= slots.count { slots += repeatElement(0, count: max(i + 1, slots.count * 2) - slots.count) }
                    slots[i] = Int32(current.ids.count + 1)
                } else if let s = sparseSlots[id] {
                    current.points[s].merge(point)
                    continue
                } else {
                    sparseSlots[id] = current.ids.count
                }
                current.ids.append(id)
                current.points.append(point)
            }
        }

        /// Closes the current minute and starts minute `m`.
        private mutating func start(_ m: Int64, firstTick t: Int64) {
            let capacity = current.ids.count
            if current.t == .min {
                // The first tick: its minute is whole only when the tick opens it.
                since = t == m ? m : m + StoragePolicy.minute
                floor = since
            } else {
                for id in current.ids where id >= 0 && id < Head.denseLimit { slots[Int(id)] = 0 }
                sparseSlots = [:]
                if current.t >= since { done.append(current) }
                if done.count > RecentMinutes.kept { floor = done.removeFirst().t + StoragePolicy.minute }
            }
            current = Minute(t: m)
            current.ids.reserveCapacity(capacity)
            current.points.reserveCapacity(capacity)
        }
    }

    private let fold = Mutex(Fold())

    /// Folds one committed tick (series ids as logged, each once, and their values).
    func add(_ t: Int64, ids: [Int64], values: [Double]) {
        fold.withLock { f in if f.enabled { f.add(t, ids: ids, values: values) } }
    }

    /// Stops answering and lets go of what is held: samples came into the store another way.
    func disable() {
        fold.withLock { f in
            guard f.enabled else { return }
            f = Fold()
            f.enabled = false
        }
    }

    /// The minute points of `ids` in `[from, to]`, as ``TwinStore/aggregate(ids:from:to:step:cached:)`` at a
    /// one-minute step reads them from the store, when every sample of them is folded here: `from` starts a
    /// minute held here, and `to` ends a minute or is at or after the newest tick. Else nil. Series without
    /// points in the range are absent.
    func points(ids: [Int64], from: Int64, to: Int64) -> [Int64: [RollupPoint]]? {
        let minute = StoragePolicy.minute
        return fold.withLock { f -> [Int64: [RollupPoint]]? in
            guard f.enabled, f.since != .max, from % minute == 0, from >= f.floor,
                  to >= f.through || (to + 1) % minute == 0 else { return nil }
            guard from <= f.through else { return [:] }
            if f.bySeries == nil {
                var index: [Int64: [RollupPoint]] = [:]
                for m in f.done + [f.current] where m.t >= f.since {
                    for (id, p) in zip(m.ids, m.points) { index[id, default: []].append(p) }
                }
                f.bySeries = index
            }
            var out: [Int64: [RollupPoint]] = [:]
            for id in ids {
                guard let held = f.bySeries![id] else { continue }
                let inRange = held.filter { $0.t >= from && $0.t <= to }
                if !inRange.isEmpty { out[id] = inRange }
            }
            return out
        }
    }
}
