import TwinCore

/// The writer's map from series keys to ids: a cache in front of the `series` table.
///
/// Collectors emit the same series in the same order tick after tick, with the same string storage, so
/// each key is first compared with the previous tick's key at the expected position (nearly free), then
/// looked up in the map, then in the store. A collector that ran at only one of two ticks (a relaxed one,
/// every 15 s) shifts the positions after its samples: the lookup then goes on from where the series it
/// found by key stood in the previous tick, so only the shifted collector's own samples are looked up by
/// key. Only series seen in the last head window stay in the map (a short-lived process leaves series
/// behind; a busy host would otherwise grow it for as long as `run` runs).
struct WriterSeriesIndex {
    private var byKey: [SeriesKey: Int64] = [:]
    /// The previous tick's keys and ids in sample order.
    private var lastKeys: [SeriesKey] = []
    private var lastIDs: [Int64] = []
    /// Whether `lastIDs` holds no series twice.
    private var lastTickUnique = false
    /// Scratch indexed by series id (ids are rowids, dense from 1): a series' position in the previous tick,
    /// filled at the first shift of a lookup and checked against `lastIDs`, so an entry from an older tick is
    /// never taken. With an id above ``denseLimit`` in the previous tick there is no resync (the keys after
    /// a shift are looked up by hash, as before), and the uniqueness check builds a set.
    private var positionOf: [Int32] = []
    /// Scratch indexed by series id: the uniqueness check that last saw the series.
    private var seenIn: [UInt32] = []
    private var check: UInt32 = 0
    static let denseLimit: Int64 = 1 << 24

    /// A tick's series ids in sample order, -1 where the series is not known yet.
    struct Lookup {
        var keys: [SeriesKey] = []
        var ids: [Int64] = []
        /// Positions whose id is -1.
        var unknown: [Int] = []
        /// How many keys matched the previous tick's at the expected position.
        var positional = 0
    }

    mutating func lookup(_ samples: [MetricSample]) -> Lookup {
        var l = Lookup()
        l.keys.reserveCapacity(samples.count)
        l.ids.reserveCapacity(samples.count)
        var next = 0 // the previous tick's position expected next
        var positionsFilled = false
        for (i, s) in samples.enumerated() {
            l.keys.append(s.key)
            if next < lastKeys.count, lastKeys[next] == s.key {
                l.ids.append(lastIDs[next])
                l.positional += 1
                next += 1
            } else if let known = byKey[s.key] {
                l.ids.append(known)
                if !positionsFilled {
                    fillPositions()
                    positionsFilled = true
                }
                // Forward only: positions matched in this tick are never matched twice.
                if let p = previousPosition(of: known), p >= next { next = p + 1 }
            } else {
                l.ids.append(-1)
                l.unknown.append(i)
            }
        }
        return l
    }

    private mutating func fillPositions() {
        guard let top = lastIDs.max(), top < Self.denseLimit else { return }
        if positionOf.count <= Int(top) { positionOf += repeatElement(-1, count: max(Int(top) + 1, positionOf.count * 2) - positionOf.count) }
        for (p, id) in lastIDs.enumerated() where id >= 0 { positionOf[Int(id)] = Int32(p) }
    }

    private func previousPosition(of id: Int64) -> Int? {
        guard id >= 0, id < positionOf.count else { return nil }
        let p = Int(positionOf[Int(id)])
        return p >= 0 && p < lastIDs.count && lastIDs[p] == id ? p : nil
    }

    /// Whether a completed lookup holds no series twice; free when the tick repeats the last one, and
    /// without hashing otherwise.
    mutating func isUnique(_ l: Lookup) -> Bool {
        if l.positional == l.ids.count && l.ids.count == lastIDs.count && lastTickUnique { return true }
        check &+= 1
        if check == 0 {
            for i in seenIn.indices { seenIn[i] = 0 }
            check = 1
        }
        for id in l.ids {
            guard id >= 0, id < Self.denseLimit else { return Set(l.ids).count == l.ids.count }
            let i = Int(id)
            if i >= seenIn.count { seenIn += repeatElement(0, count: max(i + 1, seenIn.count * 2) - seenIn.count) }
            if seenIn[i] == check { return false }
            seenIn[i] = check
        }
        return true
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

    /// Many series' ids, created where new, as ``resolve(_:_:type:)`` gives them one by one. On PostgreSQL
    /// in a few statements per batch (label sets, metrics and series each looked up, then inserted where
    /// missing), not several round trips per series: a host joining a hub brings hundreds.
    static func resolveAll(_ db: any StoreStatements, _ keys: [(SeriesKey, MetricType)]) throws -> [(Int64, Bool)] {
        guard db.dialect == .postgres, keys.count > 1 else { return try keys.map { try resolve(db, $0.0, type: $0.1) } }
        let labels = keys.map { TwinWriter.encodeLabels($0.0.labels) }

        var labelIDs: [String: Int64] = [:]
        let distinctLabels = Array(Set(labels))
        func lookUpLabels(_ texts: [String]) throws {
            for row in try db.rows("SELECT id, labels FROM label_sets WHERE hash IN (VALUES", keys: texts.map { [.integer(SeriesHash.of(labels: $0))] }, casts: ["bigint"]) {
                let (id, text) = (try row.integer(0), try row.text(1))
                labelIDs[text] = min(labelIDs[text] ?? id, id)
            }
        }
        try lookUpLabels(distinctLabels)
        let newLabels = distinctLabels.filter { labelIDs[$0] == nil }
        for (text, id) in zip(newLabels, try db.reserveIDs("label_sets", newLabels.count)) { labelIDs[text] = id }
        try db.insertRows("label_sets", ["id", "hash", "labels"], newLabels.map { [.integer(labelIDs[$0]!), .integer(SeriesHash.of(labels: $0)), .text($0)] })

        // A series is found by its label set and metric name (whatever type it was stored with), as one by one.
        struct Key: Hashable { var labelsID: Int64; var metric: String }
        var seriesIDs: [Key: Int64] = [:]
        let wanted = Array(Set(zip(keys, labels).map { Key(labelsID: labelIDs[$1]!, metric: $0.0.metric) }))
        for row in try db.rows("SELECT s.id, s.labels_id, m.name FROM series s JOIN metrics m ON m.id = s.metric_id WHERE (s.labels_id, m.name) IN (VALUES",
                               keys: wanted.map { [.integer($0.labelsID), .text($0.metric)] }, casts: ["bigint", "text"]) {
            let k = Key(labelsID: try row.integer(1), metric: try row.text(2)), id = try row.integer(0)
            seriesIDs[k] = min(seriesIDs[k] ?? id, id)
        }
        // The new series: their metrics (looked up, inserted where missing: another hub may insert the same
        // one meanwhile), then the series rows.
        var newSeries: [(key: Key, type: MetricType)] = []
        var seen = Set<Key>()
        for ((key, type), text) in zip(keys, labels) {
            let k = Key(labelsID: labelIDs[text]!, metric: key.metric)
            if seriesIDs[k] == nil, seen.insert(k).inserted { newSeries.append((k, type)) }
        }
        struct Metric: Hashable { var name: String; var type: String }
        let metrics = Array(Set(newSeries.map { Metric(name: $0.key.metric, type: $0.type.rawValue) }))
        var metricIDs: [Metric: Int64] = [:]
        func lookUpMetrics() throws {
            for row in try db.rows("SELECT id, name, type FROM metrics WHERE (name, type) IN (VALUES", keys: metrics.map { [.text($0.name), .text($0.type)] }, casts: ["text", "text"]) {
                metricIDs[Metric(name: try row.text(1), type: try row.text(2))] = try row.integer(0)
            }
        }
        try lookUpMetrics()
        let missing = metrics.filter { metricIDs[$0] == nil }
        if !missing.isEmpty {
            try db.insertRows("metrics", ["name", "type"], missing.map { [.text($0.name), .text($0.type)] }, suffix: "ON CONFLICT (name, type) DO NOTHING")
            try lookUpMetrics()
        }
        for (n, id) in zip(newSeries, try db.reserveIDs("series", newSeries.count)) { seriesIDs[n.key] = id }
        try db.insertRows("series", ["id", "metric_id", "labels_id"], newSeries.map { n in
            [.integer(seriesIDs[n.key]!), .integer(metricIDs[Metric(name: n.key.metric, type: n.type.rawValue)]!), .integer(n.key.labelsID)]
        })
        let created = Set(newSeries.map(\.key))
        return zip(keys, labels).map { key, text in
            let k = Key(labelsID: labelIDs[text]!, metric: key.0.metric)
            return (seriesIDs[k]!, created.contains(k))
        }
    }
}
