import TwinCore

/// Turns successive entity snapshots into versions and events: a new key opens a version (appeared), a
/// changed attribute set closes the open version and opens another (changed), a missing key closes it
/// (disappeared). Kinds absent from an observation were not collected at that tick and keep their state.
public struct StateTracker: Sendable {
    /// The open version of an entity: its attributes and its row id in the store.
    public struct Open: Sendable, Hashable {
        public var attributes: [String: AttributeValue]
        public var rowID: Int64
        public var validFrom: Int64
    }

    /// What one observation changes.
    public struct Delta: Sendable {
        /// Versions to close at the tick time.
        public var close: [(kind: EntityKind, key: String, rowID: Int64, validFrom: Int64)] = []
        /// Versions to open at the tick time.
        public var open: [Entity] = []
        public var events: [TwinEvent] = []
        public var isEmpty: Bool { close.isEmpty && open.isEmpty }
    }

    public private(set) var current: [EntityKind: [String: Open]] = [:]

    public init(current: [EntityKind: [String: Open]] = [:]) { self.current = current }

    /// Computes the versions and events that take the twin from its current state to `observation`'s.
    public func delta(for observation: Observation) -> Delta {
        var d = Delta()
        let t = observation.timestamp
        for kind in observation.entities.keys.sorted() {
            let list = observation.entities[kind]!
            let old = current[kind] ?? [:]
            var seen = Set<String>()
            seen.reserveCapacity(list.count)
            for e in list {
                guard seen.insert(e.key).inserted else { continue } // first of duplicate keys wins
                if let o = old[e.key] {
                    if o.attributes != e.attributes {
                        d.close.append((kind, e.key, o.rowID, o.validFrom))
                        d.open.append(e)
                        d.events.append(TwinEvent(time: t, type: .changed, kind: kind, key: e.key,
                                                  changes: TwinEvent.changes(from: o.attributes, to: e.attributes)))
                    }
                } else {
                    d.open.append(e)
                    d.events.append(TwinEvent(time: t, type: .appeared, kind: kind, key: e.key))
                }
            }
            for (key, o) in old where !seen.contains(key) {
                d.close.append((kind, key, o.rowID, o.validFrom))
                d.events.append(TwinEvent(time: t, type: .disappeared, kind: kind, key: key))
            }
        }
        return d
    }

    /// Applies a delta once its versions are stored: `opened` pairs each opened entity with its row id.
    public mutating func apply(_ d: Delta, opened rowIDs: [Int64], at t: Int64) {
        for c in d.close { current[c.kind]?[c.key] = nil }
        for (e, id) in zip(d.open, rowIDs) {
            current[e.kind, default: [:]][e.key] = Open(attributes: e.attributes, rowID: id, validFrom: t)
        }
    }
}
