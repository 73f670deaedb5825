/// What a token may do. `reader` reads everything a twin knows (with sensitive values redacted);
/// `agent` only writes data for its own host (the fleet's agents); `relay` is a hub's link to another
/// hub: it pushes batches of any host and follows a hub's stream, and reads nothing else; `admin` also
/// manages tokens and reads the audit log.
public enum Role: String, Sendable, CaseIterable, Codable {
    case admin, reader, agent, relay
}

/// What a route needs from the caller. Every route declares one (``TwinAPI``'s route table).
public enum Access: String, Sendable, CaseIterable {
    /// Anyone who can reach the server: health checks and the dashboard's static files (no data).
    case open
    /// `reader` or `admin`.
    case read
    /// `agent` (for its own host), `relay` or `admin`.
    case write
    /// `relay` or `admin`: another hub's link (relay pushes, followers).
    case relay
    /// `agent` (for its own host) or `admin`: what a hub asks of one host's agent (dispatched actions).
    case agent
    /// `admin` only.
    case admin

    /// Whether a caller with `role` (nil: no valid identity) may use a route that needs this.
    public func allows(_ role: Role?) -> Bool {
        switch self {
        case .open: return true
        case .read: return role == .reader || role == .admin
        case .write: return role == .agent || role == .relay || role == .admin
        case .relay: return role == .relay || role == .admin
        case .agent: return role == .agent || role == .admin
        case .admin: return role == .admin
        }
    }
}

/// Who made a request, as the server established it.
public struct Identity: Sendable, Equatable {
    /// Nil for a request without a valid identity (refused by every route but the open ones).
    public var role: Role?
    /// The token's public id; nil for an anonymous caller.
    public var tokenID: String?
    /// The host an agent token is bound to.
    public var host: String?
    /// The datacenter a reader token is confined to, and the hosts in it as the server resolved them for
    /// this request (nil: every host).
    public var datacenter: String?
    public var scopedHosts: Set<String>?
    /// A relay token's data policy (its rules' text): what a replica following with it may be sent.
    public var policy: String?

    /// Whether this caller may see data of `host` (nil: data of no fleet host, such as the hub's own).
    public func sees(host: String?) -> Bool {
        guard let scopedHosts else { return true }
        return host.map(scopedHosts.contains) ?? false
    }

    public init(role: Role?, tokenID: String? = nil, host: String? = nil) {
        (self.role, self.tokenID, self.host) = (role, tokenID, host)
    }

    /// A caller without a token where the server lets such callers read (loopback, `--auth optional`).
    public static let anonymousReader = Identity(role: .reader)
    public static let nobody = Identity(role: nil)
}
