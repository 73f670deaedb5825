import GRDB

extension TwinStore {
    /// How far `destination` (a remote_write URL without credentials) has been sent: per host, the time of
    /// the last sample sent (`''` is this store's own host). Empty for a destination never sent to.
    public func remoteWritePositions(destination: String) throws -> [String: Int64] {
        try pool.read { db in
            var out: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT host, through FROM remote_write_positions WHERE destination = ?", arguments: [destination]) {
                out[row[0]] = row[1]
            }
            return out
        }
    }

    /// Records `positions` of `destination` (hosts not named keep theirs).
    public func saveRemoteWritePositions(destination: String, _ positions: [String: Int64]) throws {
        guard !positions.isEmpty else { return }
        try pool.write { db in
            for (host, through) in positions {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO remote_write_positions(destination, host, through) VALUES (?, ?, ?)")
                    .execute(arguments: [destination, host, through])
            }
        }
    }
}
