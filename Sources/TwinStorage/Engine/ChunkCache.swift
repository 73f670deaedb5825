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
    private var entries: [Key: (samples: SampleColumns, used: UInt64)] = [:]
    private var clock: UInt64 = 0
    /// The clock at the last ``sweep()``.
    private var swept: UInt64 = 0
    private(set) var held = 0
    /// Most samples held (16 bytes each).
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func get(_ k: Key) -> SampleColumns? {
        guard var e = entries[k] else { return nil }
        clock += 1
        e.used = clock
        entries[k] = e
        return e.samples
    }

    mutating func put(_ k: Key, _ samples: SampleColumns) {
        guard samples.count <= capacity / 4, entries[k] == nil else { return }
        clock += 1
        entries[k] = (samples, clock)
        held += samples.count
        guard held > capacity else { return }
        // Evict down to three quarters at once: one sort per many insertions, not a scan per insertion.
        for (key, e) in entries.sorted(by: { $0.value.used < $1.value.used }) where held > capacity * 3 / 4 {
            held -= e.samples.count
            entries.removeValue(forKey: key)
        }
    }

    /// Drops the chunks not read or added since the last sweep (`run` sweeps at each seal, so the cache holds
    /// what readers came back for lately, not what they once read).
    mutating func sweep() {
        for (key, e) in entries where e.used <= swept {
            held -= e.samples.count
            entries.removeValue(forKey: key)
        }
        swept = clock
    }
}

/// Inflated chunk rows (their members' encoded chunks, 1-2 bytes a sample) kept for readers that want
/// other members of the same rows: a dashboard reads a group's series one query after another, and
/// inflating a 64-series row to decode one series is the expensive part of a long-range read. Least
/// recently used first out, bounded by bytes.
struct RowDataCache: Sendable {
    private var entries: [ChunkCache.Key: (members: [GroupBlock.Member], data: [UInt8], used: UInt64)] = [:]
    private var clock: UInt64 = 0
    private var swept: UInt64 = 0
    private(set) var held = 0
    let capacityBytes: Int

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    mutating func get(_ k: ChunkCache.Key) -> (members: [GroupBlock.Member], data: [UInt8])? {
        guard var e = entries[k] else { return nil }
        clock += 1
        e.used = clock
        entries[k] = e
        return (e.members, e.data)
    }

    mutating func put(_ k: ChunkCache.Key, _ members: [GroupBlock.Member], _ data: [UInt8]) {
        guard data.count <= capacityBytes / 8, entries[k] == nil else { return }
        clock += 1
        entries[k] = (members, data, clock)
        held += data.count
        guard held > capacityBytes else { return }
        for (key, e) in entries.sorted(by: { $0.value.used < $1.value.used }) where held > capacityBytes * 3 / 4 {
            held -= e.data.count
            entries.removeValue(forKey: key)
        }
    }

    /// Drops the rows not read or added since the last sweep (as ``ChunkCache/sweep()``).
    mutating func sweep() {
        for (key, e) in entries where e.used <= swept {
            held -= e.data.count
            entries.removeValue(forKey: key)
        }
        swept = clock
    }
}
