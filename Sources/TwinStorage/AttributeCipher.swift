import Foundation
import TwinCore

/// Encryption at rest of entity attributes (TwinSecurity provides one, from the data policy and the key
/// ring): the writer seals attributes before a version is stored, and the store opens them as it reads.
/// A store without a cipher reads sealed values as they are stored (`enc:…`).
public protocol AttributeCipher: Sendable {
    /// The attributes to store: sensitive values replaced by their sealed form.
    func seal(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue]
    /// The attributes as read: sealed values opened where a key is at hand, left sealed otherwise.
    func open(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue]
    /// An entity key as stored (the parts of it that are sensitive sealed), and as read.
    func seal(_ kind: EntityKind, key: String) -> String
    func open(_ kind: EntityKind, key: String) -> String

    // Packed blocks seal their sensitive strings together, as one message, so they compress.

    /// Whether values of `kind.attribute`, and the key of an entity of `kind`, are sealed at rest.
    func isSealed(_ kind: EntityKind, attribute: String) -> Bool
    func isSealed(_ kind: EntityKind, key: String) -> Bool
    /// The attributes in clear; nil when some sealed value cannot be opened (no key). Never masks.
    func clear(_ kind: EntityKind, _ attributes: [String: AttributeValue]) -> [String: AttributeValue]?
    func clear(_ kind: EntityKind, key: String) -> String?
    /// `bytes` sealed under the current key, naming it; nil when there is no key.
    func sealSection(_ bytes: [UInt8]) -> [UInt8]?
    /// What `sealSection` sealed; nil when its key is absent or the section was tampered with.
    func openSection(_ sealed: [UInt8]) -> [UInt8]?
    /// Whether a sealed section is under a key other than the current one.
    func isStale(section sealed: [UInt8]) -> Bool
}

extension TwinStore {
    /// Reads from now on open sealed attributes with `cipher` (nil: leave them sealed).
    public func use(cipher: (any AttributeCipher)?) { cipherBox.withLock { $0 = cipher } }

    /// The cipher in use, if any.
    public var cipher: (any AttributeCipher)? { cipherBox.withLock { $0 } }

    /// Stored attribute JSON, decoded and opened.
    func attributes(_ kind: EntityKind, _ stored: SQLValue, where place: @autoclosure () -> String) throws -> [String: AttributeValue] {
        let attrs = try AttributeJSON.decode(stored, database.dialect, where: place())
        return cipher?.open(kind, attrs) ?? attrs
    }

    /// A stored entity key, opened.
    func key(_ kind: EntityKind, _ stored: String) -> String { cipher?.open(kind, key: stored) ?? stored }
}

extension TwinStore {
    /// Rewrites stored versions as they are stored (sealed values stay sealed): `transform` gets each
    /// version's kind, stored key and stored attributes and returns the new ones, or nil to leave the row.
    /// Packed blocks whose sealed section is under an old key are re-sealed under the current one.
    /// Works in batches of 2,000 rows (then block by block), each its own transaction, so a running
    /// writer is never held up long. Returns the number of versions rewritten.
    public func rewriteVersions(_ transform: (EntityKind, String, [String: AttributeValue]) throws -> (String, [String: AttributeValue])?) throws -> Int {
        var changed = try rewriteRows(transform)
        var after: Int64 = 0
        while let row = try database.read({ db in try db.rows("SELECT id, data FROM version_blocks WHERE id > ? ORDER BY id LIMIT 1", [after]).first }) {
            after = try row.integer(0)
            let blob = try row.blob(1)
            let block: [UInt8]
            if let section = try VersionCodec.sealedSection(of: blob) {
                // Sealed together: re-sealed as a whole when under an old key.
                guard let cipher, cipher.isStale(section: section) else { continue }
                guard cipher.openSection(section) != nil else {
                    throw TwinError.unavailable("version block \(after) is sealed under a key that cannot open it; nothing was deleted")
                }
                let list = try VersionCodec.decode(blob, sealer: cipher)
                guard let b = VersionCodec.encode(list, sealer: cipher) else { throw TwinError.unavailable("no current key to re-seal version block \(after)") }
                block = b
                changed += list.count
            } else {
                var list = try VersionCodec.decode(blob)
                var n = 0
                for i in list.indices {
                    guard let (key, new) = try transform(list[i].kind, list[i].key, list[i].attributes) else { continue }
                    list[i].key = key
                    list[i].attributes = new
                    n += 1
                }
                guard n > 0 else { continue }
                block = VersionCodec.encode(list)
                changed += n
            }
            try database.write { db in try db.execute("UPDATE version_blocks SET data = ? WHERE id = ?", [block, after]) }
        }
        return changed
    }

    private func rewriteRows(_ transform: (EntityKind, String, [String: AttributeValue]) throws -> (String, [String: AttributeValue])?) throws -> Int {
        var after: Int64 = 0, changed = 0
        while true {
            let dialect = database.dialect
            let rows = try database.read { db in try db.rows("SELECT id, kind, key, attributes FROM versions WHERE id > ? ORDER BY id LIMIT 2000", [after]) }
            guard let last = rows.last else { return changed }
            after = try last.integer(0)
            var updates: [(Int64, String, SQLValue)] = []
            for row in rows {
                guard let kind = EntityKind(rawValue: try row.text(1)) else { continue }
                let id = try row.integer(0)
                let attrs = try AttributeJSON.decode(row[3], dialect, where: "versions row \(id)")
                if let (key, new) = try transform(kind, try row.text(2), attrs) { updates.append((id, key, try AttributeJSON.encode(new, for: dialect))) }
            }
            guard !updates.isEmpty else { continue }
            try database.write { db in
                for (id, key, json) in updates { try db.execute("UPDATE versions SET key = ?, attributes = ? WHERE id = ?", [key, json, id]) }
            }
            changed += updates.count
        }
    }
}
