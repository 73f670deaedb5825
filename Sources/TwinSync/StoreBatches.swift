import TwinCore
import TwinStorage

/// Batches read back from an agent's store: the catch-up lane, and any range sent again.
///
/// A batch read from the store stands alone (no base) and defines every series it uses, so it decodes
/// without anything sent before; within a tick, series are in ref order. The same range read twice gives
/// the same batch, so its encoding is byte-identical.
public struct StoreBatches {
    public let store: TwinStore
    public let host: String

    public init(store: TwinStore, host: String) {
        self.store = store
        self.host = host
    }

    /// Up to `maxTicks` ticks from sequence number `first`; nil when the store has no tick there yet.
    public func batch(from first: UInt64, maxTicks: Int) throws -> SyncBatch? {
        guard let epoch = try store.epoch() else { return nil }
        let positions = try store.ticks(from: first, limit: maxTicks)
        guard let start = positions.first, start.seq == first, let end = positions.last else { return nil }
        let catalog = try store.seriesCatalog()
        let samples = try store.samples(ids: catalog.map(\.id), from: start.time, to: end.time)
        var index: [Int64: Int] = [:]
        var ticks = positions.enumerated().map { i, p in
            index[p.time] = i
            return TickChange(seq: p.seq, time: p.time)
        }
        var used = Set<Int64>()
        for id in samples.keys.sorted() {
            for (t, v) in samples[id]! {
                guard let i = index[t] else { continue } // a sample between ticks (an import): not a tick's
                ticks[i].refs.append(id)
                ticks[i].values.append(v)
                used.insert(id)
            }
        }
        for v in try store.versionsStarting(from: start.time, to: end.time) {
            guard let i = index[v.validFrom] else { continue }
            ticks[i].opened.append(Entity(kind: v.kind, key: v.key, attributes: v.attributes))
        }
        for v in try store.versionsEnding(from: start.time, to: end.time) {
            guard let t = v.validTo, let i = index[t] else { continue }
            ticks[i].closed.append(EntityRef(kind: v.kind, key: v.key))
        }
        // Ticks whose raw samples the disk cap thinned: sent without samples, marked, so the receiver records the gap.
        let gaps = try store.rawGaps(from: start.time, to: end.time)
        if !gaps.isEmpty {
            for gap in gaps {
                for i in ticks.indices where ticks[i].time >= gap.from && ticks[i].time <= gap.to {
                    ticks[i].thinned = true
                    ticks[i].refs = []
                    ticks[i].values = []
                }
            }
            used = Set(ticks.lazy.flatMap(\.refs))
        }
        for i in ticks.indices {
            ticks[i].opened.sort { ($0.kind.rawValue, $0.key) < ($1.kind.rawValue, $1.key) }
            ticks[i].closed.sort { ($0.kind.rawValue, $0.key) < ($1.kind.rawValue, $1.key) }
        }
        let dictionary = catalog.filter { used.contains($0.id) }.map { SeriesDefinition(ref: $0.id, key: $0.key, type: $0.type) }
        return SyncBatch(host: host, epoch: epoch, dictionary: dictionary, ticks: ticks)
    }
}
