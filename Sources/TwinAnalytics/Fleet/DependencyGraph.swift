import TwinCore

/// What talked to what across the fleet, from the connections and listening ports the twins hold: an
/// edge from a client process (`host:process`) to the service it connected to (`host:port:process`).
///
/// Each TCP connection between two fleet hosts is in both twins; the client's side makes the edge (its
/// local port is not one it listens on). Peer addresses are resolved to hosts by the addresses the fleet's
/// own sockets use (a connection's local address, a listener's bound address); loopback stays on the
/// host. A connection whose remote address was hashed or dropped on its way (a data policy) names its peer
/// in `remote_host` when the address was resolved before (``addressOwners(_:)``). A peer outside the fleet is a node of its own (`address:port` for a server, `address` for a
/// client connecting in).
public struct DependencyGraph: Sendable, Codable, Equatable {
    public struct Node: Sendable, Codable, Hashable {
        /// `host:process`, `host:port:process` or an outside address.
        public var id: String
        public var host: String?
        public var process: String?
        public var port: Int64?
        /// `client`, `service` or `external`.
        public var role: String
    }

    public struct Edge: Sendable, Codable, Hashable {
        public var from: String
        public var to: String
        public var `protocol`: String
        public var port: Int64
        /// Connections between the two at the time asked.
        public var connections: Int
    }

    public var nodes: [Node]
    public var edges: [Edge]

    /// Which fleet host uses which address (a connection's local address, a listener's bound address);
    /// an address two hosts claim resolves to neither, loopback and wildcards to none.
    public static func addressOwners(_ fleet: FleetState) -> [String: String] {
        var owner: [String: String?] = [:]
        func claim(_ address: String?, _ host: String) {
            guard let a = address, !isLoopback(a), !isWildcard(a) else { return }
            if let existing = owner[a], existing != host { owner[a] = .some(nil) } else { owner[a] = host }
        }
        for (host, entities) in fleet.hosts {
            for e in entities {
                switch e.kind {
                case .listeningPorts: claim(e.attributes["address"]?.description, host)
                case .connections: claim(e.attributes["local_address"]?.description, host)
                default: break
                }
            }
        }
        return owner.compactMapValues { $0 }
    }

    public static func build(_ fleet: FleetState) -> DependencyGraph {
        let owner = addressOwners(fleet)
        var listening: [String: [String: String]] = [:] // host → "proto/port" → process
        for (host, entities) in fleet.hosts {
            for e in entities where e.kind == .listeningPorts {
                if let proto = e.attributes["protocol"]?.description, let port = e.attributes["port"]?.intValue {
                    listening[host, default: [:]]["\(proto)/\(port)"] = e.attributes["process"].flatMap { $0 == .null ? nil : $0.description } ?? "?"
                }
            }
        }
        func resolve(_ address: String, from host: String) -> String? {
            isLoopback(address) ? host : owner[address]
        }

        var nodes: [String: Node] = [:]
        var edges: [Edge: Int] = [:]
        for (host, entities) in fleet.hosts {
            for e in entities where e.kind == .connections {
                let a = e.attributes
                guard let proto = a["protocol"]?.description, let localPort = a["local_port"]?.intValue,
                      let remote = a["remote_address"]?.description, let remotePort = a["remote_port"]?.intValue else { continue }
                let process = a["process"].flatMap { $0 == .null ? nil : $0.description } ?? "?"
                let named = a["remote_host"].flatMap { v -> String? in
                    guard case .string(let h) = v, fleet.hosts[h] != nil else { return nil }
                    return h
                }
                let peer = named ?? resolve(remote, from: host)
                let from: Node, to: Node
                if let served = listening[host]?["\(proto)/\(localPort)"] {
                    // The server's side: a fleet client's own twin makes the edge; an outside one is made here.
                    guard peer == nil else { continue }
                    from = Node(id: remote, role: "external")
                    to = Node(id: "\(host):\(localPort):\(served)", host: host, process: served, port: localPort, role: "service")
                } else {
                    from = Node(id: "\(host):\(process)", host: host, process: process, role: "client")
                    if let peer {
                        let served = listening[peer]?["\(proto)/\(remotePort)"] ?? "?"
                        to = Node(id: "\(peer):\(remotePort):\(served)", host: peer, process: served, port: remotePort, role: "service")
                    } else {
                        to = Node(id: "\(remote):\(remotePort)", port: remotePort, role: "external")
                    }
                }
                nodes[from.id] = from
                nodes[to.id] = to
                edges[Edge(from: from.id, to: to.id, protocol: proto, port: to.port ?? remotePort, connections: 0), default: 0] += 1
            }
        }
        return DependencyGraph(
            nodes: nodes.values.sorted { $0.id < $1.id },
            edges: edges.map { e, n in var e = e; e.connections = n; return e }.sorted { ($0.from, $0.to, $0.protocol) < ($1.from, $1.to, $1.protocol) })
    }

    public static func isLoopback(_ a: String) -> Bool { a.hasPrefix("127.") || a == "::1" || a == "::ffff:127.0.0.1" }
    static func isWildcard(_ a: String) -> Bool { a == "0.0.0.0" || a == "::" || a == "*" || a.isEmpty }
}
