import Foundation

/// One stored API token: its public id, what it may do, and a hash of its secret (never the secret).
public struct TokenRecord: Sendable, Equatable, Codable {
    public var id: String
    /// `admin`, `reader` or `agent`.
    public var role: String
    /// The one host an `agent` token may write for.
    public var host: String?
    /// A note for people (`token list`).
    public var name: String
    /// The datacenter a `reader` token is confined to (nil: every host).
    public var datacenter: String?
    /// A `relay` token's data policy (the rules' text): applied to what a replica following with it is sent.
    public var policy: String?
    public var secretHash: [UInt8]
    public var created: Int64
    public var expires: Int64?
    public var revoked: Int64?

    public init(id: String, role: String, host: String?, name: String, secretHash: [UInt8], created: Int64, expires: Int64?, revoked: Int64? = nil) {
        (self.id, self.role, self.host, self.name, self.secretHash) = (id, role, host, name, secretHash)
        (self.created, self.expires, self.revoked) = (created, expires, revoked)
    }

    /// The columns ``init(row:)`` reads, in its order.
    static let columns = "id, role, host, name, secret_hash, created, expires, revoked, datacenter, policy"

    init(row: SQLRow) throws {
        self.init(id: try row.text(0), role: try row.text(1), host: row[2].string, name: try row.text(3), secretHash: try row.blob(4),
                  created: try row.integer(5), expires: row[6].int64, revoked: row[7].int64)
        datacenter = row[8].string
        policy = row[9].string
    }
}

extension TwinStore {
    /// Stores a new token.
    public func insertToken(_ t: TokenRecord) throws {
        try database.write { db in
            try db.execute("INSERT INTO tokens(\(TokenRecord.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [t.id, t.role, t.host, t.name, t.secretHash, t.created, t.expires, t.revoked, t.datacenter, t.policy])
        }
    }

    /// The token with this public id, revoked or not.
    public func token(id: String) throws -> TokenRecord? {
        try database.read { db in
            try db.rows("SELECT \(TokenRecord.columns) FROM tokens WHERE id = ?", [id]).first.map(TokenRecord.init(row:))
        }
    }

    /// Every token, oldest first.
    public func tokens() throws -> [TokenRecord] {
        try database.read { db in try db.rows("SELECT \(TokenRecord.columns) FROM tokens ORDER BY created, id", []).map(TokenRecord.init(row:)) }
    }

    /// Binds an active agent token to `host` (an admin re-binding a host to a new agent, or a token to a
    /// renamed host); false when there is no such active agent token.
    public func rebindToken(id: String, host: String) throws -> Bool {
        try database.write { db in
            try db.execute("UPDATE tokens SET host = ? WHERE id = ? AND role = 'agent' AND revoked IS NULL", [host, id]) == 1
        }
    }

    /// Marks a token revoked at `at`; false when there is no such token or it was revoked already.
    public func revokeToken(id: String, at: Int64) throws -> Bool {
        try database.write { db in
            try db.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", [at, id]) == 1
        }
    }
}
