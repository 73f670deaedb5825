import Crypto
import Foundation
import Synchronization
import TwinCore
import TwinStorage

/// API tokens: `htw_<id>_<secret>`, a 48-bit public id (shown in lists and the audit log) and a 256-bit
/// secret from the system's CSPRNG. Only the secret's SHA-256 is stored, compared in constant time;
/// failed attempts are throttled per source address.
public final class TokenAuthority: Sendable {
    /// The outcome of checking a request's credentials.
    public enum Outcome: Sendable, Equatable {
        /// No credentials were sent.
        case none
        case valid(Identity)
        /// Credentials were sent and are wrong, expired or revoked (the reason is for the caller).
        case invalid(String)
        /// Too many failures from this source lately; try again after the given seconds.
        case throttled(retryAfter: Int)
    }

    public static let prefix = "htw_"
    /// Failed attempts a source may make per ``window`` before it is refused outright.
    public static let maxFailures = 10
    static let window: Int64 = 60_000

    let store: TwinStore
    private let failures = Mutex<[String: (count: Int, since: Int64)]>([:])

    public init(store: TwinStore) { self.store = store }

    /// A new token for `role` (and `host`, for agents) expiring at `expires`: the record to store and the
    /// token to show once.
    public static func mint(role: Role, host: String?, name: String, expires: Int64?, now: Int64) -> (token: String, record: TokenRecord) {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) }.hex
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hex
        let record = TokenRecord(id: id, role: role.rawValue, host: host, name: name, secretHash: Array(SHA256.hash(data: Array(secret.utf8))),
                                 created: now, expires: expires)
        return (prefix + id + "_" + secret, record)
    }

    /// Creates and stores a token; returns it (shown once) with its record.
    public func create(role: Role, host: String?, name: String = "", expires: Int64?, datacenter: String? = nil, policy: String? = nil,
                       now: Int64 = TwinTime.nowMillis()) throws -> (token: String, record: TokenRecord) {
        if let policy {
            guard role == .relay else { throw TwinError.badInput("--policy applies to relay tokens (what a replica following with it is sent)") }
            _ = try DataPolicy.parse(policy, file: "--policy")
        }
        if role == .agent, (host ?? "").isEmpty { throw TwinError.badInput("an agent token is bound to one host: give --host NAME") }
        if role != .agent, host != nil { throw TwinError.badInput("--host binds agent tokens only") }
        if let datacenter, role != .reader || datacenter.isEmpty {
            throw TwinError.badInput(datacenter.isEmpty ? "--datacenter needs a name" : "--datacenter scopes reader tokens only")
        }
        var minted = Self.mint(role: role, host: host, name: name, expires: expires, now: now)
        minted.record.datacenter = datacenter
        minted.record.policy = policy
        try store.insertToken(minted.record)
        return minted
    }

    /// Checks an `Authorization` header from `source` (an address, for throttling).
    public func authenticate(authorization: String?, source: String, now: Int64 = TwinTime.nowMillis()) -> Outcome {
        guard let authorization, !authorization.isEmpty else { return .none }
        if let wait = throttled(source, now) { return .throttled(retryAfter: wait) }
        let outcome = check(authorization, now: now)
        if case .invalid = outcome { recordFailure(source, now) }
        return outcome
    }

    private func check(_ authorization: String, now: Int64) -> Outcome {
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return .invalid("use Authorization: Bearer TOKEN") }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard token.hasPrefix(Self.prefix) else { return .invalid("not a HostTwin token") }
        let body = token.dropFirst(Self.prefix.count).split(separator: "_", maxSplits: 1)
        guard body.count == 2, body[0].count == 12, body[1].count == 64 else { return .invalid("malformed token") }
        let presented = Array(SHA256.hash(data: Array(body[1].utf8)))
        let record: TokenRecord?
        do { record = try store.token(id: String(body[0])) } catch { return .invalid("tokens cannot be read: \(error)") }
        // Compare against something of the same length either way, so an unknown id costs the same.
        let stored = record?.secretHash ?? [UInt8](repeating: 0, count: presented.count)
        guard Self.constantTimeEqual(presented, stored), let record else { return .invalid("unknown token") }
        if let revoked = record.revoked, revoked <= now { return .invalid("token \(record.id) was revoked") }
        if let expires = record.expires, expires <= now { return .invalid("token \(record.id) expired at \(TwinTime.rfc3339(expires))") }
        guard let role = Role(rawValue: record.role) else { return .invalid("token \(record.id) has an unknown role") }
        var identity = Identity(role: role, tokenID: record.id, host: record.host)
        identity.datacenter = record.datacenter
        identity.policy = record.policy
        return .valid(identity)
    }

    /// Equal length and bytes, in time that depends on the length only.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private func throttled(_ source: String, _ now: Int64) -> Int? {
        failures.withLock { f in
            guard let e = f[source], now - e.since < Self.window, e.count >= Self.maxFailures else { return nil }
            return Int((e.since + Self.window - now + 999) / 1000)
        }
    }

    private func recordFailure(_ source: String, _ now: Int64) {
        failures.withLock { f in
            if f.count > 10_000 { f = f.filter { now - $0.value.since < Self.window } }
            if let e = f[source], now - e.since < Self.window { f[source] = (e.count + 1, e.since) } else { f[source] = (1, now) }
        }
    }
}
