
/// A series' anomaly detector state as stored: opaque bytes (the analytics module's format) and the
/// time (ms) of the last point it has been fed.
public struct DetectorState: Sendable, Equatable {
    public var series: Int64
    public var through: Int64
    public var bytes: [UInt8]

    public init(series: Int64, through: Int64, bytes: [UInt8]) {
        (self.series, self.through, self.bytes) = (series, through, bytes)
    }

    /// Whether this is the marker ``TwinStore/retireDetectorStates(before:silentThrough:)`` leaves of a
    /// series that stopped: no detector, and `through` the last minute a pass found it still silent. The
    /// series had no sample from `through` minus the time it went unfed before it was retired (an hour for
    /// ``AnomalyMonitor``) to `through`, so readers go on from after `through` with a new detector instead
    /// of reading and learning its history again.
    public var isRetired: Bool { bytes.isEmpty }
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

    /// Drops the states of series not fed since `before` (ms), and of deleted series. Returns how many went.
    @discardableResult
    public func pruneDetectorStates(before: Int64) throws -> Int {
        try database.write { db in
            try db.execute("DELETE FROM detector_states WHERE through < ? OR series_id NOT IN (SELECT id FROM series)", [before])
        }
    }

    /// Retires the detector of each series not fed since `before` (ms), an exited process's: its state
    /// becomes a marker of a few bytes (``DetectorState/isRetired``). Every marker, new or older, then
    /// says the series was still silent through `silentThrough`, the minute the caller fed the others to:
    /// a pass resumes the markers from the same minute as the live states, in the same reads, which find
    /// nothing for them. A series that comes back is fed from its return and saved with a detector again.
    /// Returns how many were retired.
    @discardableResult
    public func retireDetectorStates(before: Int64, silentThrough: Int64) throws -> Int {
        let empty: [UInt8] = []
        return try database.write { db in
            let retired = try db.execute("UPDATE detector_states SET state = ? WHERE through < ? AND state <> ?", [empty, before, empty])
            _ = try db.execute("UPDATE detector_states SET through = ? WHERE state = ? AND through < ?", [silentThrough, empty, silentThrough])
            return retired
        }
    }
}
