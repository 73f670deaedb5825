import Synchronization
import TwinCore
import TwinStorage

/// A ``SampleSource`` over a ``TwinStore``: series matched in memory against the store's series
/// catalog (indexed by metric name), samples read from chunks and the unsealed log.
public final class StoreSampleSource: SampleSource {
    public let store: TwinStore
    static let tooMany = "query processing would load too many samples into memory in query execution; narrow the selector or the range"

    private struct Index {
        var count = 0
        var ids: [Int64] = []
        var labels: [Labels] = []
        var types: [MetricType] = []
        var byName: [String: [Int]] = [:]
    }
    private let index = Mutex(Index())

    public init(store: TwinStore) { self.store = store }

    /// Every series (id, labels with `__name__`, type) matching all `matchers`.
    public func matching(_ matchers: [Matcher]) throws -> [(id: Int64, labels: Labels, type: MetricType)] {
        let catalog = try store.seriesCatalog()
        return index.withLock { ix in
            if ix.count < catalog.count {
                for s in catalog[ix.count...] {
                    let labels = Labels(s.key.labels.pairs + [Label(Labels.metricName, s.key.metric)])
                    ix.byName[s.key.metric, default: []].append(ix.ids.count)
                    ix.ids.append(s.id)
                    ix.labels.append(labels)
                    ix.types.append(s.type)
                }
                ix.count = catalog.count
            }
            let candidates: [Int]
            if let name = matchers.first(where: { $0.name == Labels.metricName && $0.op == .equal }) {
                candidates = ix.byName[name.value] ?? []
            } else {
                candidates = Array(ix.ids.indices)
            }
            var out: [(Int64, Labels, MetricType)] = []
            for i in candidates where matchers.allSatisfy({ $0.matches(ix.labels[i].value($0.name)) }) {
                out.append((ix.ids[i], ix.labels[i], ix.types[i]))
            }
            return out
        }
    }

    public func select(_ matchers: [Matcher], from: Int64, to: Int64, limit: Int) throws -> [SeriesData] {
        let found = try matching(matchers)
        guard !found.isEmpty else { return [] }
        // Ticks are at least 100 ms apart; only a read that could exceed the limit is counted first.
        if Double(found.count) * ((Double(to) - Double(from)) / 100 + 1) > Double(limit) {
            if try store.sealedSampleBound(ids: found.map(\.id), from: from, to: to) > limit { throw PromQLError.execution(Self.tooMany) }
        }
        let data = try store.samples(ids: found.map(\.id), from: from, to: to)
        var out: [SeriesData] = []
        out.reserveCapacity(found.count)
        for s in found {
            guard let points = data[s.id], !points.isEmpty else { continue }
            out.append(SeriesData(labels: s.labels, t: points.map(\.0), v: points.map(\.1)))
        }
        return out
    }
}
