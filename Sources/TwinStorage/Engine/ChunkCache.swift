/// Decoded sealed chunks kept for readers that ask again (a dashboard refreshing the same series):
/// least recently used first out, bounded by the number of samples held. Keyed by the chunk row, its
/// bounds and the series, so a row id reused after compaction never returns the old samples.
struct ChunkCache: Sendable {
    struct Key: Hashable, Sendable {
        var id: Int64
        var minT: Int64
        var maxT: Int64
        var count: Int64
        var bytes: Int64
        /// The series whose chunk of the row this is.
        var series: Int64
    }
    private var entries: [Key: (samples: [(Int64, Double)], used: UInt64)] = [:]
    private var clock: UInt64 = 0
    private(set) var held = 0
    /// Most samples held (16 bytes each).
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func get(_ k: Key) -> [(Int64, Double)]? {
        guard var e = entries[k] else { return nil }
        clock += 1
        e.used = clock
        entries[k] = e
        return e.samples
    }

    mutating func put(_ k: Key, _ samples: [(Int64, Double)]) {
        guard samples.count <= capacity / 4, entries[k] == nil else { return }
        clock += 1
        entries[k] = (samples, clock)
        held += samples.count
        while held > capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            held -= oldest.value.samples.count
            entries.removeValue(forKey: oldest.key)
        }
    }
}
