
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

    /// Drops the states of series not fed since `before` (ms): exited processes' series, deleted series.
    /// Returns how many went.
    @discardableResult
    public func pruneDetectorStates(before: Int64) throws -> Int {
        try database.write { db in
            try db.execute("DELETE FROM detector_states WHERE through < ? OR series_id NOT IN (SELECT id FROM series)", [before])
        }
    }
}
