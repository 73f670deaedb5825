import Foundation
import Hummingbird
import TwinAnalytics
import TwinCore
import TwinStorage

/// One host a hub holds, as `hosttwin fleet` and `/api/v1/fleet` show it.
public struct FleetHost: Sendable, Codable, Equatable {
    public var host: String
    /// The host's store epoch (hex) and the last tick applied here.
    public var epoch: String
    public var appliedThrough: UInt64
    /// The time of that tick (RFC 3339) and how far it is behind now, in seconds.
    public var lastTick: String?
    public var lagSeconds: Double?
    /// When the hub last applied a batch of the host (RFC 3339).
    public var lastContact: String?
    /// The hub's clock minus the host's, measured at its agent's last handshake, in seconds.
    public var clockOffsetSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case host, epoch, appliedThrough = "applied_through", lastTick = "last_tick", lagSeconds = "lag_seconds", lastContact = "last_contact"
        case clockOffsetSeconds = "clock_offset_seconds"
    }

    /// Every host of `store` (a hub's), by name, as of `now`.
    public static func list(_ store: TwinStore, now: Int64 = TwinTime.nowMillis()) throws -> [FleetHost] {
        try store.remoteCursors().map { c in
            FleetHost(host: c.host, epoch: String(c.epoch, radix: 16), appliedThrough: c.appliedThrough,
                      lastTick: c.lastTime.map(TwinTime.rfc3339), lagSeconds: c.lastTime.map { Double(now - $0) / 1000 },
                      lastContact: c.updated.map(TwinTime.rfc3339), clockOffsetSeconds: c.clockOffset.map { Double($0) / 1000 })
        }
    }
}

extension TwinAPI {
    /// `GET /api/v1/fleet`: the hosts this hub holds, with their cursor, lag and last contact.
    func fleet(_ p: Params) throws -> Response {
        struct Body: Encodable { var status = "success"; var data: [String: [FleetHost]] }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(Body(data: ["hosts": try FleetHost.list(store)]))))
    }
}

extension TwinAPI {
    /// `GET /api/v1/twin/graph?at=T`: the dependency graph across the hosts of the store as of T (client
    /// process → host:port:process), from the connections and listening ports a reader may see.
    func graph(_ p: Params) throws -> Response {
        let at = try time(p, "at", default: "now")
        let versions = present(try store.state(at: at, kinds: [.host, .connections, .listeningPorts]), to: p.identity)
        struct Body: Encodable { var at: String; var nodes: [DependencyGraph.Node]; var edges: [DependencyGraph.Edge] }
        let g = DependencyGraph.build(FleetState(versions))
        return try success(Body(at: TwinTime.rfc3339(at), nodes: g.nodes, edges: g.edges))
    }
}
