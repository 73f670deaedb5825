import Synchronization
import TwinStorage

/// The last minutes of the series a reader asked for, fed tick by tick with what the store committed, so
/// that rules evaluated every few seconds read their windows from memory instead of the store's chunks and
/// log (the rules were about a third of a quiet `run`'s CPU outside the collection thread; docs/OBSERVATION.md).
///
/// A series is held from the first tick after it was first asked for, and only while it is asked for; a
/// read is answered from memory only when every series it selects is held over the whole range, else from
/// the store (``StoreSampleSource`` falls back), so the answer is always the store's. Thread-safe: the
/// collection thread feeds while the rule task reads.
public final class RecentSamples: Sendable {
    /// How far back each held series is kept (ms before the newest tick).
    public let keep: Int64
    /// A series not asked for in this long is let go (ms).
    static let idle: Int64 = 10 * 60_000

    struct Window {
        var id: Int64
        /// Every sample of the series at or after this time is held (ms).
        var since: Int64
        var askedAt: Int64
        var t: [Int64] = []
        var v: [Double] = []
    }
    struct Held {
        var windows: [Window] = []
        /// Index in `windows` by series id.
        var slots: [Int64: Int] = [:]
        /// Index in `windows` plus one by series id, for ids below ``denseLimit`` (0: not held): a tick's few
        /// hundred ids are each looked up by an array index rather than a hash (a hash was 1.7 % of `run`).
        var dense: [Int32] = []
        /// Whether a held id is beyond ``denseLimit`` (found through `slots`).
        var sparse = false
        /// The newest tick fed (.min: none yet, nothing is held).
        var latest: Int64 = .min
        /// The highest series id fed, and how many ticks brought a higher one (the store's new series).
        var newestID: Int64 = .min
        var seriesAdded = 0
        var trimmedAt: Int64 = .min
        /// Reads answered from memory and from the store, for tests and benchmarks.
        var answered = 0, declined = 0
    }
    static let denseLimit: Int64 = 1 << 16
    private let held = Mutex(Held())

    public init(keep: Int64 = 6 * 60_000) { self.keep = keep }

    /// Takes a committed tick: its time and the store's series ids and values.
    public func feed(at t: Int64, ids: [Int64], values: [Double]) {
        held.withLock { h in
            if t <= h.latest {
                // The clock went back: start over, with a new series generation (catalogs read before are re-read).
                h = Held(newestID: h.newestID, seriesAdded: h.seriesAdded + 1, answered: h.answered, declined: h.declined)
            }
            h.latest = t
            if let top = ids.max(), top > h.newestID { (h.newestID, h.seriesAdded) = (top, h.seriesAdded + 1) }
            guard !h.windows.isEmpty else { return }
            for (i, id) in ids.enumerated() {
                let slot = id >= 0 && id < h.dense.count ? Int(h.dense[Int(id)]) - 1 : h.sparse ? h.slots[id] ?? -1 : -1
                guard slot >= 0 else { continue }
                h.windows[slot].t.append(t)
                h.windows[slot].v.append(values[i])
            }
            if t >= h.trimmedAt &+ 60_000 { h.trim(at: t, keep: keep) }
        }
    }

    /// The samples of `ids` in `[from, to]` (series without any left out), or nil when memory does not
    /// hold them all over the range or they are more than `limit`. The ids not held yet are held from the
    /// next tick on.
    func columns(ids: [Int64], from: Int64, to: Int64, limit: Int) -> [Int64: SampleColumns]? {
        held.withLock { h -> [Int64: SampleColumns]? in
            guard h.latest != .min else { return nil } // never fed: not a running twin's rules
            var complete = to <= h.latest
            for id in ids {
                if let slot = h.slots[id] {
                    h.windows[slot].askedAt = h.latest
                    if h.windows[slot].since > from { complete = false }
                } else {
                    h.add(Window(id: id, since: h.latest + 1, askedAt: h.latest))
                    complete = false
                }
            }
            guard complete else { h.declined += 1; return nil }
            var out: [Int64: SampleColumns] = [:]
            var count = 0
            for id in ids {
                let w = h.windows[h.slots[id]!]
                let a = Evaluation.lowerBound(w.t, from), b = Evaluation.upperBound(w.t, to)
                guard a < b else { continue }
                count += b - a
                if count > limit { h.declined += 1; return nil }
                out[id] = SampleColumns(t: Array(w.t[a..<b]), v: Array(w.v[a..<b]))
            }
            h.answered += 1
            return out
        }
    }

    /// Changes whenever a tick fed brought a series new to the store (series ids only grow) or the clock went
    /// back, so a reader's catalog of series need not be read again while it stays; nil until a tick is fed.
    var seriesGeneration: Int? { held.withLock { $0.latest == .min ? nil : $0.seriesAdded } }

    /// Reads answered from memory and reads left to the store so far.
    public var reads: (answered: Int, declined: Int) { held.withLock { ($0.answered, $0.declined) } }
}

extension RecentSamples.Held {
    mutating func add(_ w: RecentSamples.Window) {
        slots[w.id] = windows.count
        windows.append(w)
        if w.id >= 0 && w.id < RecentSamples.denseLimit {
            if dense.count <= w.id { dense += [Int32](repeating: 0, count: Int(w.id) + 1 - dense.count) }
            dense[Int(w.id)] = Int32(windows.count)
        } else {
            sparse = true
        }
    }

    /// Drops samples older than `keep` and the series not asked for lately.
    mutating func trim(at t: Int64, keep: Int64) {
        trimmedAt = t
        let cut = t - keep
        let kept = windows.filter { t - $0.askedAt <= RecentSamples.idle }
        if kept.count < windows.count {
            (windows, slots, dense, sparse) = ([], [:], [], false)
            for w in kept { add(w) }
        }
        for i in windows.indices {
            let drop = Evaluation.lowerBound(windows[i].t, cut)
            windows[i].t.removeFirst(drop)
            windows[i].v.removeFirst(drop)
            windows[i].since = max(windows[i].since, cut)
        }
    }
}
