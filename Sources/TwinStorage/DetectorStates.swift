
/// A series' anomaly detector state as stored: opaque bytes (the analytics module's format) and the
/// time (ms) of the last point it has been fed.
public struct DetectorState: Sendable, Equatable {
    public var series: Int64
    public var through: Int64
    public var bytes: [UInt8]

    public init(series: Int64, through: Int64, bytes: [UInt8]) {
        (self.series, self.through, self.bytes) = (series, through, bytes)
    }
}

/// The series whose detectors were retired (``TwinStore/retireDetectorStates(before:silentThrough:)``):
/// series that stopped, an exited process's. Each had no sample from `through` minus the time it went
/// unfed before it was retired (an hour for the anomaly monitor) to `through`, the last minute a pass
/// found them all still silent; readers go on from after `through` with a new detector instead of reading
/// and learning their history again. `through` speaks of the series with a state that the pass did not
/// feed as well: each was silent from its state's `through` to it, so a reader resumes them from after it
/// too, in the same reads as the live ones (a series pushed by an agent may still receive older minutes
/// late, its backlog: readers resume those from their state's own minute). Kept as one `meta` row (the
/// ids delta-coded), a few bytes a series: as rows, a detector's kilobyte shrunk in place to a marker
/// left the table's pages a third full. That row
/// is written when the set changes; every pass moves `through` in a small second row (``Mark``), and the
/// store keeps the parsed set in memory while the mark's fingerprint matches it.
public struct RetiredDetectors: Sendable, Equatable {
    public var through: Int64
    public var series: Set<Int64>

    public init(through: Int64, series: Set<Int64>) {
        (self.through, self.series) = (through, series)
    }

    static let metaKey = "detectors_retired"

    /// The newest `through` of the set stored in ``metaKey``, with the set's ``fingerprint``: "through:fingerprint".
    /// A pass that retires nothing new writes only this. A binary without it ignores it and reads the older
    /// `through` from the set's row: more minutes read, the same answers.
    struct Mark: Equatable {
        static let metaKey = "detectors_retired_mark"
        var through: Int64
        var fingerprint: UInt64
        var text: String { "\(through):\(fingerprint)" }
        init(through: Int64, fingerprint: UInt64) { (self.through, self.fingerprint) = (through, fingerprint) }
        init?(text: String) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let through = Int64(parts[0]), let fingerprint = UInt64(parts[1]) else { return nil }
            self.init(through: through, fingerprint: fingerprint)
        }
    }

    /// FNV-1a over the sorted ids' bytes: whether a mark speaks of this set.
    var fingerprint: UInt64 {
        var hash = TwinDigest.FNV()
        for id in series.sorted() { hash.add(UInt64(bitPattern: id)) }
        return hash.value
    }

    /// "through:first,delta,delta,..." with the ids sorted.
    public var text: String {
        var out = "\(through):"
        var last: Int64 = 0
        for (i, id) in series.sorted().enumerated() {
            if i > 0 { out += "," }
            out += String(id - last)
            last = id
        }
        return out
    }

    /// Parses ``text``; nil when damaged (the set is then forgotten: its series learn again).
    public init?(text: String) {
        guard let colon = text.firstIndex(of: ":"), let through = Int64(text[..<colon]) else { return nil }
        var series = Set<Int64>(), last: Int64 = 0
        let ids = text[text.index(after: colon)...]
        for part in ids.isEmpty ? [] : ids.split(separator: ",", omittingEmptySubsequences: false) {
            guard let delta = Int64(part), delta > 0, !last.addingReportingOverflow(delta).overflow else { return nil }
            last += delta
            series.insert(last)
        }
        self.init(through: through, series: series)
    }
}

extension TwinStore {
    /// Saves detector states, replacing each series' previous one, in one transaction.
    public func saveDetectorStates(_ states: [DetectorState]) throws {
        guard !states.isEmpty else { return }
        try database.write { db in
            for s in states {
                try db.execute("""
                    INSERT INTO detector_states(series_id, through, state) VALUES (?, ?, ?)
                    ON CONFLICT(series_id) DO UPDATE SET through = excluded.through, state = excluded.state
                    """, [s.series, s.through, s.bytes])
            }
        }
    }

    /// Every saved detector state, by series id.
    public func detectorStates() throws -> [Int64: DetectorState] {
        try detectorStates(fedSince: .min).states
    }

    /// The saved detector states fed through `from` or later, by series id, and only the `through` of the
    /// others, whose bytes ``detectorState(series:)`` reads if their series has new minutes: a pass needs
    /// the states of the series it feeds, not those of the thousands of exited processes that find none.
    public func detectorStates(fedSince from: Int64) throws -> (states: [Int64: DetectorState], older: [Int64: Int64]) {
        try database.read { db in
            var states: [Int64: DetectorState] = [:], older: [Int64: Int64] = [:]
            for row in try db.rows("SELECT series_id, through, state FROM detector_states WHERE through >= ?", [from]) {
                let id = try row.integer(0)
                states[id] = DetectorState(series: id, through: try row.integer(1), bytes: try row.blob(2))
            }
            for row in try db.rows("SELECT series_id, through FROM detector_states WHERE through < ?", [from]) {
                older[try row.integer(0)] = try row.integer(1)
            }
            return (states, older)
        }
    }

    /// The saved detector state of series `id`, if any.
    public func detectorState(series id: Int64) throws -> DetectorState? {
        try database.read { db in
            try db.rows("SELECT through, state FROM detector_states WHERE series_id = ?", [id]).first.map {
                DetectorState(series: id, through: try $0.integer(0), bytes: try $0.blob(1))
            }
        }
    }

    /// Drops the states of series not fed since `before` (ms), and of deleted series; the retired ones too
    /// when they were found silent only before `before`. Returns how many states went.
    @discardableResult
    public func pruneDetectorStates(before: Int64) throws -> Int {
        try database.write { db in
            if before > .min, let retired = try retiredDetectors(db), retired.through < before {
                try Self.deleteMeta(db, RetiredDetectors.metaKey)
                try Self.deleteMeta(db, RetiredDetectors.Mark.metaKey)
            }
            return try db.execute("DELETE FROM detector_states WHERE through < ? OR series_id NOT IN (SELECT id FROM series)", [before])
        }
    }

    /// The series whose detectors were retired, and the last minute they were all found silent; nil when
    /// none were.
    public func retiredDetectors() throws -> RetiredDetectors? {
        try database.read { db in try retiredDetectors(db) }
    }

    /// Reads the mark, and the set's row only when the set kept in memory is not the one the mark speaks of
    /// (each pass and each minute's anomaly scan read it: thousands of ids parsed each time, before).
    private func retiredDetectors(_ db: any StoreStatements) throws -> RetiredDetectors? {
        let mark = try Self.meta(db, RetiredDetectors.Mark.metaKey).flatMap(RetiredDetectors.Mark.init(text:))
        if let mark, let kept = retiredKept.withLock({ $0 }), kept.fingerprint == mark.fingerprint {
            return RetiredDetectors(through: mark.through, series: kept.series)
        }
        guard let text = try Self.meta(db, RetiredDetectors.metaKey), var retired = RetiredDetectors(text: text) else { return nil }
        let fingerprint = retired.fingerprint
        retiredKept.withLock { $0 = (fingerprint, retired.series) }
        // A mark of another set is older than the row (written by a binary without marks): the row holds.
        if let mark, mark.fingerprint == fingerprint { retired.through = mark.through }
        return retired
    }

    /// Retires the detector of each series not fed since `before` (ms), an exited process's: its state is
    /// dropped and the series joins ``RetiredDetectors``, which then says every series the caller did not
    /// feed, retired or not, was still silent through `silentThrough`, the minute it fed the others to: a
    /// pass resumes them from the same minute as the live states, in the same reads, which find nothing for
    /// them. Written at every pass, with an empty set too. A retired series that came back (it has a state
    /// again) leaves the set. Returns how many were retired.
    @discardableResult
    public func retireDetectorStates(before: Int64, silentThrough: Int64) throws -> Int {
        try database.write { db in
            var ended: [Int64] = [], live: [Int64] = []
            for row in try db.rows("SELECT series_id, through FROM detector_states") {
                if try row.integer(1) < before { ended.append(try row.integer(0)) } else { live.append(try row.integer(0)) }
            }
            let stored = try retiredDetectors(db)?.series
            let previous = stored ?? []
            let retired = RetiredDetectors(through: silentThrough, series: previous.union(ended).subtracting(live))
            if !ended.isEmpty { _ = try db.execute("DELETE FROM detector_states WHERE through < ?", [before]) }
            if retired.series != stored {
                try Self.setMeta(db, RetiredDetectors.metaKey, retired.text)
                retiredKept.withLock { $0 = nil } // read again once committed
            }
            try Self.setMeta(db, RetiredDetectors.Mark.metaKey, RetiredDetectors.Mark(through: silentThrough, fingerprint: retired.fingerprint).text)
            return ended.count
        }
    }
}
