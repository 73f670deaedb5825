import TwinCore

/// The writer's map from series keys to ids: a cache in front of the `series` table.
///
/// Collectors emit the same series in the same order tick after tick, with the same string storage, so
/// each key is first compared with the previous tick's key at the same position (nearly free), then
/// looked up in the map, then in the store. Only series seen in the last head window stay in the map (a
/// short-lived process leaves series behind; a busy host would otherwise grow it for as long as `run`
/// runs).
struct WriterSeriesIndex {
    private var byKey: [SeriesKey: Int64] = [:]
    /// The previous tick's keys and ids in sample order.
    private var lastKeys: [SeriesKey] = []
    private var lastIDs: [Int64] = []
    /// Whether `lastIDs` holds no series twice.
    private var lastTickUnique = false

    /// A tick's series ids in sample order, -1 where the series is not known yet.
    struct Lookup {
        var keys: [SeriesKey] = []
        var ids: [Int64] = []
        /// Positions whose id is -1.
        var unknown: [Int] = []
        /// How many keys matched the previous tick's at the same position.
        var positional = 0
    }

    func lookup(_ samples: [MetricSample]) -> Lookup {
        var l = Lookup()
        l.keys.reserveCapacity(samples.count)
        l.ids.reserveCapacity(samples.count)
        for (i, s) in samples.enumerated() {
            l.keys.append(s.key)
            if i < lastKeys.count, lastKeys[i] == s.key {
                l.ids.append(lastIDs[i])
                l.positional += 1
            } else if let known = byKey[s.key] { l.ids.append(known) } else {
                l.ids.append(-1)
                l.unknown.append(i)
            }
        }
        return l
    }

    /// Whether a completed lookup holds no series twice; free when the tick repeats the last one.
    func isUnique(_ l: Lookup) -> Bool {
        (l.positional == l.ids.count && l.ids.count == lastIDs.count && lastTickUnique) || Set(l.ids).count == l.ids.count
    }

    /// Remembers a committed tick's series order for the next lookup.
    mutating func remember(_ l: Lookup, unique: Bool) {
        lastKeys = l.keys
        lastIDs = l.ids
        lastTickUnique = unique
    }

    subscript(key: SeriesKey) -> Int64? { byKey[key] }

    /// Adds ids that are committed. Ids learned inside a transaction join only after it commits: after
    /// a rollback SQLite would give the same ids to other series.
    mutating func learn(_ ids: [SeriesKey: Int64]) { byKey.merge(ids) { _, new in new } }

    mutating func learn(_ key: SeriesKey, _ id: Int64) { byKey[key] = id }

    /// Keeps only the series seen in the last head window.
    mutating func evictAllBut(_ active: Set<Int64>) { byKey = byKey.filter { active.contains($0.value) } }

    /// The series' id, and whether it was created now (with its metric and label set, when new).
    static func resolve(_ db: any StoreStatements, _ key: SeriesKey, type: MetricType) throws -> (Int64, Bool) {
        let labels = TwinWriter.encodeLabels(key.labels)
        if let id = try TwinStore.seriesID(db, metric: key.metric, labels: labels) { return (id, false) }
        let metricID = try db.value("SELECT id FROM metrics WHERE name = ? AND type = ?", [key.metric, type.rawValue])?.int64
            ?? db.insert("INSERT INTO metrics(name, type) VALUES (?, ?)", [key.metric, type.rawValue])
        let labelsID = try TwinStore.labelSetID(db, labels)
            ?? db.insert("INSERT INTO label_sets(hash, labels) VALUES (?, ?)", [SeriesHash.of(labels: labels), labels])
        return (try db.insert("INSERT INTO series(metric_id, labels_id) VALUES (?, ?)", [metricID, labelsID]), true)
    }
}
