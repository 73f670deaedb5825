import Foundation
import HTTPTypes
import Synchronization
import TwinCore
import TwinSecurity

/// Who may call the API and how much at once: tokens, what a caller without one may do, and per-caller
/// limits on concurrent requests and live streams.
public struct AccessControl: Sendable {
    /// Checks tokens; nil only for APIs built without a store's tokens (never on a real server).
    public var tokens: TokenAuthority?
    /// The role of a caller who sends no token: `reader` on loopback without TLS (the default), nil
    /// (every route but the open ones needs a token) with `--auth required`, TLS or a non-loopback address.
    public var anonymousRole: Role? = .reader
    /// Requests (other than open routes) one caller may have running at once: a token, or for callers
    /// without one, a source address. The dashboard sends up to a dozen at once (charts and tables, and
    /// those of a page just left still finishing).
    public var maxConcurrentPerCaller = 16
    /// Live streams open at once, in all and per caller.
    public var maxLiveStreams = 64
    /// Push sessions (a hub's agents): per agent token its in-order and live lanes, and the previous
    /// session's pair while the hub notices it ended; in all, as many as the fleet has agents.
    public var maxPushSessions = 10_000
    public var maxPushSessionsPerCaller = 4
    public var maxLiveStreamsPerCaller = 16

    public init(tokens: TokenAuthority? = nil, anonymousRole: Role? = .reader) {
        self.tokens = tokens
        self.anonymousRole = anonymousRole
    }

    /// The caller of a request from `source`, or the API error that refuses it (401, 429).
    func identify(_ authorization: String?, source: String) -> Result<Identity, APIError> {
        let outcome = tokens?.authenticate(authorization: authorization, source: source)
            ?? (authorization == nil ? .none : .invalid("this server has no tokens"))
        switch outcome {
        case .none: return .success(anonymousRole.map { Identity(role: $0) } ?? .nobody)
        case .valid(let identity): return .success(identity)
        case .invalid(let reason):
            var e = APIError(type: "unauthorized", message: "invalid token: \(reason)", status: .unauthorized)
            e.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
            return .failure(e)
        case .throttled(let wait):
            var e = APIError(type: "too_many_requests", message: "too many failed attempts from \(source); try again in \(wait) s", status: .tooManyRequests)
            e.headers[.retryAfter] = String(wait)
            return .failure(e)
        }
    }

    /// Nil when `identity` may use a route that needs `access`; else the 401 or 403 that says why.
    static func refusal(_ identity: Identity, _ access: Access, route: String) -> APIError? {
        guard !access.allows(identity.role) else { return nil }
        if identity.tokenID == nil {
            var e = APIError(type: "unauthorized", message: "\(route) needs a token with role \(access.roles): send Authorization: Bearer TOKEN (`hosttwin token create`)", status: .unauthorized)
            e.headers[.wwwAuthenticate] = "Bearer"
            return e
        }
        return APIError(type: "forbidden", message: "token \(identity.tokenID!) has role \(identity.role?.rawValue ?? "none"); \(route) needs \(access.roles)", status: .forbidden)
    }
}

extension Access {
    /// The roles that satisfy this, for messages.
    var roles: String { Role.allCases.filter { allows($0) }.map(\.rawValue).joined(separator: " or ") }
}

/// Counts what each caller has running, refusing what passes a limit.
final class CallerLimits: Sendable {
    private let running = Mutex<[String: Int]>([:])

    /// Takes a slot for `caller` if fewer than `limit` are taken (and fewer than `total` overall).
    func acquire(_ caller: String, limit: Int, total: Int = .max) -> Bool {
        running.withLock { r in
            let mine = r[caller, default: 0]
            guard mine < limit, r.values.reduce(0, +) < total else { return false }
            r[caller] = mine + 1
            return true
        }
    }

    func release(_ caller: String) {
        running.withLock { r in
            let n = r[caller, default: 1] - 1
            r[caller] = n > 0 ? n : nil
        }
    }
}
