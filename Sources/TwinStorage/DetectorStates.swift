
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
/// and learning their history again. Kept as one `meta` row (the ids delta-coded), a few bytes a series:
/// as rows, a detector's kilobyte shrunk in place to a marker left the table's pages a third full.
public struct RetiredDetectors: Sendable, Equatable {
    public var through: Int64
    public var series: Set<Int64>

    public init(through: Int64, series: Set<Int64>) {
        (self.through, self.series) = (through, series)
    }

    static let metaKey = "detectors_retired"

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
        try database.read { db in
            var out: [Int64: DetectorState] = [:]
            for row in try db.rows("SELECT series_id, through, state FROM detector_states") {
                let id = try row.integer(0)
                out[id] = DetectorState(series: id, through: try row.integer(1), bytes: try row.blob(2))
            }
            return out
        }
    }

    /// Drops the states of series not fed since `before` (ms), and of deleted series; the retired ones too
    /// when they were found silent only before `before`. Returns how many states went.
    @discardableResult
    public func pruneDetectorStates(before: Int64) throws -> Int {
        try database.write { db in
            if before > .min, let text = try Self.meta(db, RetiredDetectors.metaKey), (RetiredDetectors(text: text)?.through ?? .min) < before {
                try Self.deleteMeta(db, RetiredDetectors.metaKey)
            }
            return try db.execute("DELETE FROM detector_states WHERE through < ? OR series_id NOT IN (SELECT id FROM series)", [before])
        }
    }

    /// The series whose detectors were retired, and the last minute they were all found silent; nil when
    /// none were.
    public func retiredDetectors() throws -> RetiredDetectors? {
        try database.read { db in try Self.meta(db, RetiredDetectors.metaKey).flatMap(RetiredDetectors.init(text:)) }
    }

    /// Retires the detector of each series not fed since `before` (ms), an exited process's: its state is
    /// dropped and the series joins ``RetiredDetectors``, which then says every retired series was still
    /// silent through `silentThrough`, the minute the caller fed the others to: a pass resumes them from
    /// the same minute as the live states, in the same reads, which find nothing for them. A retired series
    /// that came back (it has a state again) leaves the set. Returns how many were retired.
    @discardableResult
    public func retireDetectorStates(before: Int64, silentThrough: Int64) throws -> Int {
        try database.write { db in
            var ended: [Int64] = [], live: [Int64] = []
            for row in try db.rows("SELECT series_id, through FROM detector_states") {
                if try row.integer(1) < before { ended.append(try row.integer(0)) } else { live.append(try row.integer(0)) }
            }
            var retired = try Self.meta(db, RetiredDetectors.metaKey).flatMap(RetiredDetectors.init(text:))?.series ?? []
            guard !ended.isEmpty || !retired.isEmpty else { return 0 }
            retired.formUnion(ended)
            retired.subtract(live)
            _ = try db.execute("DELETE FROM detector_states WHERE through < ?", [before])
            try Self.setMeta(db, RetiredDetectors.metaKey, RetiredDetectors(through: silentThrough, series: retired).text)
            return ended.count
        }
    }
}
