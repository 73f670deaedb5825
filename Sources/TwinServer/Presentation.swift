import TwinCore
import TwinSecurity
import TwinStorage

/// What each caller may see of the state: admins see everything the store can open; everyone else sees
/// sensitive values that the policy keeps (command lines, user names, remote addresses) as `***`
/// (docs/SECURITY.md).
extension TwinAPI {
    func sees(_ identity: Identity) -> Bool { identity.role == .admin }

    func present(_ versions: [EntityVersion], to identity: Identity) -> [EntityVersion] {
        guard !sees(identity) else { return versions }
        return versions.map { v in
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
        d.changed = diff.changed.map { .init(kind: $0.kind, key: dataPolicy.redactedKey($0.kind, $0.key), changes: dataPolicy.redactedForReaders($0.kind, $0.changes)) }
        return d
    }

    func present(_ events: [TwinEvent], to identity: Identity) -> [TwinEvent] {
        sees(identity) ? events : dataPolicy.redactedForReaders(events)
    }
}
