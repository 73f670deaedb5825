import TwinCore
import TwinQuery

/// How two hosts differ (`hosttwin compare`): in state — host facts (kernel, OS, CPU, memory), packages
/// and their versions, services and their states, listening ports and their processes — and in resource
/// profile over the hour before the time asked.
public struct HostComparison: Sendable, Codable, Equatable {
    /// One item that differs: present on one side only, or with another value.
    public struct Difference: Sendable, Codable, Equatable {
        /// `host`, `packages`, `services` or `listening_ports`.
        public var kind: String
        public var item: String
        /// Its value on each host; nil where the host does not have it.
        public var left: String?
        public var right: String?
    }

    /// A resource over the hour before the time asked, on each host.
    public struct Profile: Sendable, Codable, Equatable {
        public var resource: String
        public var left: Double?
        public var right: Double?
    }

    public var left: String
    public var right: String
    public var differences: [Difference]
    /// Per kind, how many items the two hosts have alike.
    public var alike: [String: Int]
    public var profile: [Profile]

    /// The facts and items compared: kind → (item name, value) of each entity.
    static let facts = ["kernel", "os", "architecture", "cpu_model", "cpu_count", "memory_bytes"]

    static func items(_ fleet: FleetState, _ host: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        let f = fleet.facts(of: host)
        for name in facts { if let v = f[name] { out["host", default: [:]][name] = v.description } }
        for e in fleet.entities(.packages, of: host) {
            let name = e.attributes["name"]?.description ?? e.key
            let arch = e.attributes["architecture"]?.description
            out["packages", default: [:]][arch.map { "\(name):\($0)" } ?? name] = e.attributes["version"]?.description ?? "?"
        }
        for e in fleet.entities(.services, of: host) {
            let a = e.attributes
            out["services", default: [:]][a["name"]?.description ?? e.key] = [a["active"], a["sub"]].compactMap { $0?.description }.joined(separator: "/")
        }
        for e in fleet.entities(.listeningPorts, of: host) {
            let a = e.attributes
            guard let proto = a["protocol"]?.description, let port = a["port"]?.intValue else { continue }
            let process = a["process"].flatMap { $0 == .null ? nil : $0.description } ?? "?"
            let item = "\(proto)/\(port)"
            // A port bound on several addresses (v4 and v6) is one item.
            if let seen = out["listening_ports"]?[item], seen != process { out["listening_ports"]![item] = seen + "," + process } else { out["listening_ports", default: [:]][item] = process }
        }
        return out
    }

    /// The state comparison of `left` and `right` in `fleet`, with `profile` rows given.
    public static func compare(_ fleet: FleetState, _ left: String, _ right: String, profile: [Profile] = []) -> HostComparison {
        let a = items(fleet, left), b = items(fleet, right)
        var differences: [Difference] = []
        var alike: [String: Int] = [:]
        for kind in ["host", "packages", "services", "listening_ports"] {
            let l = a[kind] ?? [:], r = b[kind] ?? [:]
            alike[kind] = 0
            for item in Set(l.keys).union(r.keys).sorted() {
                if l[item] == r[item] { alike[kind]! += 1 } else { differences.append(Difference(kind: kind, item: item, left: l[item], right: r[item])) }
            }
        }
        return HostComparison(left: left, right: right, differences: differences, alike: alike, profile: profile)
    }

    /// The resources of the profile: average CPU busy (cores), memory used (fraction), load, network
    /// received and disk written (bytes/s) over the hour before `at`, per host (rates over 5 minutes
    /// averaged, so a host with less than an hour of history is not understated).
    public static let profileQueries: [(String, String)] = [
        ("cpu busy cores", #"avg_over_time(sum by (host) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[5m]))[1h:1m])"#),
        ("memory used fraction", "1 - avg_over_time(node_memory_MemAvailable_bytes[1h]) / avg_over_time(node_memory_MemTotal_bytes[1h])"),
        ("load1", "avg_over_time(node_load1[1h])"),
        ("network received B/s", #"avg_over_time(sum by (host) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))[1h:1m])"#),
        ("disk written B/s", "avg_over_time(sum by (host) (rate(node_disk_written_bytes_total[5m]))[1h:1m])"),
    ]

    /// The profile of two hosts at `at` from the store behind `engine` (series of a single host's store,
    /// without a `host` label, are `localName`'s).
    public static func profile(engine: PromQLEngine, at: Int64, left: String, right: String, localName: String) throws -> [Profile] {
        try profileQueries.map { name, q in
            var values: [String: Double] = [:]
            if case .vector(_, let v) = try engine.instant(try PromQLParser.parse(q), at: at) {
                for s in v { values[s.labels["host"] ?? localName] = s.value }
            }
            return Profile(resource: name, left: values[left], right: values[right])
        }
    }
}
