extension TwinStore {
    /// How far `destination` (a remote_write URL without credentials) has been sent: per host, the time of
    /// the last sample sent (`''` is this store's own host). Empty for a destination never sent to.
    public func remoteWritePositions(destination: String) throws -> [String: Int64] {
        try database.read { db in
            var out: [String: Int64] = [:]
            for row in try db.rows("SELECT host, through FROM remote_write_positions WHERE destination = ?", [destination]) {
                out[try row.text(0)] = try row.integer(1)
            }
            return out
        }
    }

    /// Records `positions` of `destination` (hosts not named keep theirs).
    public func saveRemoteWritePositions(destination: String, _ positions: [String: Int64]) throws {
        guard !positions.isEmpty else { return }
        try database.write { db in
            for (host, through) in positions {
                try db.execute("""
                    INSERT INTO remote_write_positions(destination, host, through) VALUES (?, ?, ?)
                    ON CONFLICT(destination, host) DO UPDATE SET through = excluded.through
                    """, [destination, host, through])
            }
        }
    }
}
