import TwinCore

/// A store's entities grouped by host. At a hub every entity carries a `host` attribute and keys are
/// `HOST/KEY`; a single host's store holds one host, named by its `host` entity's hostname.
public struct FleetState: Sendable {
    /// Host → its entities, keys without the host prefix and without the `host` attribute.
    public var hosts: [String: [EntityVersion]]

    public init(_ versions: [EntityVersion], localName: String? = nil) {
        var out: [String: [EntityVersion]] = [:]
        var local: [EntityVersion] = []
        for var v in versions {
            if case .string(let host)? = v.attributes.removeValue(forKey: "host"), v.key.hasPrefix(host + "/") {
                v.key.removeFirst(host.count + 1)
                out[host, default: []].append(v)
            } else {
                local.append(v)
            }
        }
        if !local.isEmpty {
            let name = localName ?? local.first { $0.kind == .host }?.attributes["hostname"]?.description ?? "local"
            out[name, default: []] += local
        }
        hosts = out
    }

    /// `host`'s entities of `kind`.
    public func entities(_ kind: EntityKind, of host: String) -> [EntityVersion] {
        (hosts[host] ?? []).filter { $0.kind == kind }
    }

    /// `host`'s host facts (kernel, OS, CPU count, memory size), if collected.
    public func facts(of host: String) -> [String: AttributeValue] {
        entities(.host, of: host).first?.attributes ?? [:]
    }
}
