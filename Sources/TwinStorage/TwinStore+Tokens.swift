import Foundation
import GRDB

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

    init(row: Row) {
        self.init(id: row["id"], role: row["role"], host: row["host"], name: row["name"], secretHash: [UInt8](row["secret_hash"] as Data),
                  created: row["created"], expires: row["expires"], revoked: row["revoked"])
        datacenter = row["datacenter"]
        policy = row["policy"]
    }
}

extension TwinStore {
    /// Stores a new token.
    public func insertToken(_ t: TokenRecord) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO tokens(id, role, host, name, secret_hash, created, expires, revoked, datacenter, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [t.id, t.role, t.host, t.name, Data(t.secretHash), t.created, t.expires, t.revoked, t.datacenter, t.policy])
        }
    }

    /// The token with this public id, revoked or not.
    public func token(id: String) throws -> TokenRecord? {
        try pool.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM tokens WHERE id = ?"), arguments: [id]).map(TokenRecord.init(row:))
        }
    }

    /// Every token, oldest first.
    public func tokens() throws -> [TokenRecord] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY created, id").map(TokenRecord.init(row:)) }
    }

    /// Binds an active agent token to `host` (an admin re-binding a host to a new agent, or a token to a
    /// renamed host); false when there is no such active agent token.
    public func rebindToken(id: String, host: String) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "UPDATE tokens SET host = ? WHERE id = ? AND role = 'agent' AND revoked IS NULL", arguments: [host, id])
            return db.changesCount == 1
        }
    }

    /// Marks a token revoked at `at`; false when there is no such token or it was revoked already.
    public func revokeToken(id: String, at: Int64) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", arguments: [at, id])
            return db.changesCount == 1
        }
    }
}
