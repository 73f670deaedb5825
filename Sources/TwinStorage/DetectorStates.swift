import Foundation
import GRDB

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
        try pool.write { db in
            let upsert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO detector_states(series_id, through, state) VALUES (?, ?, ?)")
            for s in states { try upsert.execute(arguments: [s.series, s.through, Data(s.bytes)]) }
        }
    }

    /// Every saved detector state, by series id.
    public func detectorStates() throws -> [Int64: DetectorState] {
        try pool.read { db in
            var out: [Int64: DetectorState] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT series_id, through, state FROM detector_states") {
                let id: Int64 = row["series_id"]
                out[id] = DetectorState(series: id, through: row["through"], bytes: [UInt8](row["state"] as Data))
            }
            return out
        }
    }

    /// Drops the states of series not fed since `before` (ms): exited processes' series, deleted series.
    /// Returns how many went.
    @discardableResult
    public func pruneDetectorStates(before: Int64) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM detector_states WHERE through < ? OR series_id NOT IN (SELECT id FROM series)", arguments: [before])
            return db.changesCount
        }
    }
}
