import TwinCore
import TwinSecurity
import TwinStorage

/// What each caller may see of the state: admins see everything the store can open; everyone else sees
/// sensitive values that the policy keeps (command lines, user names, remote addresses) as `***`
/// (docs/SECURITY.md).
extension TwinAPI {
    func sees(_ identity: Identity) -> Bool { identity.role == .admin }

    /// The fleet host an entity key belongs to at a hub (`HOST/KEY`), for a caller confined to some hosts.
    static func host(ofKey key: String) -> String? { key.firstIndex(of: "/").map { String(key[..<$0]) } }

    func present(_ versions: [EntityVersion], to identity: Identity) -> [EntityVersion] {
        guard !sees(identity) else { return versions }
        let visible = identity.scopedHosts == nil ? versions : versions.filter { identity.sees(host: $0.attributes["host"]?.description) }
        return visible.map { v in
            var v = v
            v.key = dataPolicy.redactedKey(v.kind, v.key)
            v.attributes = dataPolicy.redactedForReaders(v.kind, v.attributes)
            return v
        }
    }

    func present(_ diff: StateDiff, to identity: Identity) -> StateDiff {
        guard !sees(identity) else { return diff }
        var d = diff
        d.appeared = present(diff.appeared, to: identity)
        d.disappeared = present(diff.disappeared, to: identity)
        d.changed = diff.changed.filter { identity.sees(host: Self.host(ofKey: $0.key)) }.map { .init(kind: $0.kind, key: dataPolicy.redactedKey($0.kind, $0.key), changes: dataPolicy.redactedForReaders($0.kind, $0.changes)) }
        return d
    }

    func present(_ events: [TwinEvent], to identity: Identity) -> [TwinEvent] {
        guard !sees(identity) else { return events }
        // A confined caller sees its hosts' entity events only (not the hub's own run events).
        let visible = identity.scopedHosts == nil ? events : events.filter { e in e.key.map { identity.sees(host: Self.host(ofKey: $0)) } ?? false }
        return dataPolicy.redactedForReaders(visible)
    }
}
