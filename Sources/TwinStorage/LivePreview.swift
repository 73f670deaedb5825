import Synchronization

/// Samples a hub holds in memory only: the newest ticks of hosts whose in-order stream is still catching
/// up (the live lane, docs/format/sync.md "Two lanes"). Reads of the store see them after each series'
/// stored samples; once the in-order stream applies a host's ticks up to a time, the preview forgets that
/// host's samples up to it. Nothing here is durable: the agent keeps every tick until the in-order lane
/// has it acknowledged.
public final class LivePreview: Sendable {
    struct HostPart {
        /// The newest tick time the in-order stream has applied.
        var through: Int64 = .min
        /// Series with preview samples.
        var series: Set<Int64> = []
    }

    /// The most samples kept per series (the oldest go first): a quarter hour at 1 s.
    public static let limitPerSeries = 900

    private let state = Mutex<(hosts: [String: HostPart], samples: [Int64: [(Int64, Double)]])>(([:], [:]))
    /// Whether any samples are held (checked first by every read, so a hub without a backlog pays nothing).
    private let holding = Atomic<Bool>(false)

    public init() {}

    /// Adds one tick of `host` (series ids of this store and their values); ignored when the in-order
    /// stream has applied `time` already. Returns the samples kept.
    @discardableResult
    public func add(host: String, time: Int64, ids: [Int64], values: [Double]) -> Int {
        state.withLock { s -> Int in
            var part = s.hosts[host] ?? HostPart()
            guard time > part.through else { return 0 }
            var kept = 0
            for (id, v) in zip(ids, values) {
                var list = s.samples.removeValue(forKey: id) ?? []
                guard list.last.map({ time > $0.0 }) ?? true else { s.samples[id] = list; continue }
                if list.count >= Self.limitPerSeries { list.removeFirst(list.count - Self.limitPerSeries + 1) }
                list.append((time, v))
                s.samples[id] = list
                part.series.insert(id)
                kept += 1
            }
            s.hosts[host] = part
            if kept > 0 { holding.store(true, ordering: .releasing) }
            return kept
        }
    }

    /// The in-order stream applied `host`'s ticks through `time`: its preview samples up to then go.
    public func advance(host: String, through time: Int64) {
        state.withLock { s in
            var part = s.hosts[host] ?? HostPart()
            guard time > part.through else { return }
            part.through = time
            if !part.series.isEmpty {
                for id in part.series {
                    guard var list = s.samples.removeValue(forKey: id) else { continue }
                    list.removeAll { $0.0 <= time }
                    if list.isEmpty { part.series.remove(id) } else { s.samples[id] = list }
                }
                if s.samples.isEmpty { holding.store(false, ordering: .releasing) }
            }
            s.hosts[host] = part
        }
    }

    /// Samples held, over all series.
    public var count: Int { state.withLock { $0.samples.values.reduce(0) { $0 + $1.count } } }

    /// The series with held samples in `[from, to]`.
    func seriesIDs(from: Int64, to: Int64) -> [Int64] {
        guard holding.load(ordering: .acquiring) else { return [] }
        return state.withLock { s in s.samples.compactMap { id, list in list.contains { $0.0 >= from && $0.0 <= to } ? id : nil } }
    }

    /// Appends to `out` the held samples of `ids` in `[from, to]` that are newer than the series' last
    /// sample in `out` (stored samples win; the preview only extends them).
    func merge(into out: inout [Int64: SampleColumns], ids: some Sequence<Int64>, from: Int64, to: Int64) {
        guard holding.load(ordering: .acquiring) else { return }
        state.withLock { s in
            for id in ids {
                guard let list = s.samples[id] else { continue }
                let after = out[id]?.t.last ?? .min
                let extra = list.filter { $0.0 > after && $0.0 >= from && $0.0 <= to }
                if !extra.isEmpty { out[id, default: SampleColumns()].append(extra) }
            }
        }
    }
}
