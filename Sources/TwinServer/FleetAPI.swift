import Foundation
import Hummingbird
import TwinAnalytics
import TwinCore
import TwinStorage

/// One host a hub holds, as `hosttwin fleet` and `/api/v1/fleet` show it.
public struct FleetHost: Sendable, Codable, Equatable {
    public var host: String
    /// The datacenter it is in (the hub its agent pushes to, or the relay it came through), when named.
    public var datacenter: String?
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
    /// Ticks the host's agent held at its last handshake that this hub has not applied yet (its agent's
    /// catch-up still to come; nil for a host relayed from another hub).
    public var backlogTicks: UInt64?
    /// With warnings asked for: the share of the host's series alerting in the last 10 minutes, and
    /// what says the host is heading for trouble (empty when nothing does).
    public var anomalyRate: Double?
    public var warnings: [AnomalyReport.Warning]?

    enum CodingKeys: String, CodingKey {
        case host, datacenter, backlogTicks = "backlog_ticks", epoch, appliedThrough = "applied_through", lastTick = "last_tick", lagSeconds = "lag_seconds", lastContact = "last_contact"
        case clockOffsetSeconds = "clock_offset_seconds", anomalyRate = "anomaly_rate", warnings
    }

    /// A host that sent nothing for this long is warned about.
    public static let staleAfter: Double = 60

    /// Every host of `store` (a hub's), by name, as of `now`; with `health`, each host's anomaly rate
    /// and failover warnings (an anomaly scan of the last hour: seconds on a large hub).
    public static func list(_ store: TwinStore, now: Int64 = TwinTime.nowMillis(), health: Bool = false) throws -> [FleetHost] {
        let scanned = health ? try FleetHealth.scan(store: store, now: now) : [:]
        return try store.remoteCursors().map { c in
            var h = FleetHost(host: c.host, datacenter: c.datacenter, epoch: String(c.epoch, radix: 16), appliedThrough: c.appliedThrough,
                              lastTick: c.lastTime.map(TwinTime.rfc3339), lagSeconds: c.lastTime.map { Double(now - $0) / 1000 },
                              lastContact: c.updated.map(TwinTime.rfc3339), clockOffsetSeconds: c.clockOffset.map { Double($0) / 1000 },
                              backlogTicks: c.agentLatest.map { $0 > c.appliedThrough ? $0 - c.appliedThrough : 0 })
            if health {
                h.anomalyRate = scanned[c.host]?.anomalyRate ?? 0
                var warnings = scanned[c.host]?.warnings ?? []
                if let lag = h.lagSeconds, lag > staleAfter {
                    warnings.insert(.init(kind: "silent", subject: c.host, evidence: String(format: "no tick for %.0f s (last %@)", lag, h.lastTick ?? "-"), host: c.host), at: 0)
                }
                if (h.anomalyRate ?? 0) >= AnomalyScan.hostThreshold {
                    warnings.insert(.init(kind: "anomalous", subject: c.host, evidence: String(format: "%.0f %% of its series alerting in the last 10 minutes", (h.anomalyRate ?? 0) * 100), host: c.host), at: 0)
                }
                h.warnings = warnings
            }
            return h
        }
    }
}

extension TwinAPI {
    /// `GET /api/v1/fleet[?warnings=1]`: the hosts this hub holds, with their cursor, lag and last
    /// contact, and with `warnings`, their anomaly rate and failover warnings.
    func fleet(_ p: Params) throws -> Response {
        struct Body: Encodable { var status = "success"; var data: [String: [FleetHost]] }
        let health = p["warnings"].map { $0 == "1" || $0 == "true" } ?? false
        let hosts = try FleetHost.list(store, health: health).filter { p.identity.sees(host: $0.host) }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(Body(data: ["hosts": hosts]))))
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
