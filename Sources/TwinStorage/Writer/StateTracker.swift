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
        /// Unchanged entities whose attributes came in storage other than the open version's (read from the
        /// store at start, or rebuilt equal by a collector): the open version takes the collector's, so the
        /// next comparison finds them identical without looking inside. Nothing to store.
        public var adopt: [(kind: EntityKind, key: String, attributes: [String: AttributeValue])] = []
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
                    if Self.sameStorage(o.attributes, e.attributes) { continue }
                    if o.attributes == e.attributes {
                        d.adopt.append((kind, e.key, e.attributes))
                    } else {
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

    /// Whether two attribute sets share one storage, so are equal without a look at their contents: a
    /// collector that hands over the same dictionary tick after tick (a steady process's) is compared at
    /// the cost of a pointer, where `==` looks up every attribute of dictionaries built apart (a hundred
    /// processes' attributes were most of the tick's commit after a restart).
    @inline(__always)
    static func sameStorage(_ a: [String: AttributeValue], _ b: [String: AttributeValue]) -> Bool {
        withUnsafeBytes(of: a) { a in withUnsafeBytes(of: b) { b in a.elementsEqual(b) } }
    }

    /// Applies a delta once its versions are stored: `opened` pairs each opened entity with its row id.
    public mutating func apply(_ d: Delta, opened rowIDs: [Int64], at t: Int64) {
        for a in d.adopt { current[a.kind]?[a.key]?.attributes = a.attributes }
        for c in d.close { current[c.kind]?[c.key] = nil }
        for (e, id) in zip(d.open, rowIDs) {
            current[e.kind, default: [:]][e.key] = Open(attributes: e.attributes, rowID: id, validFrom: t)
        }
    }
}
