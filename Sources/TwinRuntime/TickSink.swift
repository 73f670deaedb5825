import TwinCore
import TwinServer

/// A tick the store has committed, as ``CollectionService`` hands it on.
public struct CommittedTick: Sendable {
    /// The tick's sequence number in the store's epoch (sync positions).
    public var seq: UInt64
    /// The tick's time (ms since the epoch, on the interval grid).
    public var time: Int64
    /// What the collectors saw, after the data policy (hashes and drops) was applied.
    public var observation: Observation
    /// The state changes the tick brought, with values readers may see (sensitive ones masked).
    public var events: [TwinEvent]
    /// The latest health line of every collector, sorted by collector.
    public var health: [CollectorHealth]
    /// What the store holds of the tick: series ids and values (a series twice in the tick kept once),
    /// the versions opened (attributes after the data policy, before sealing) and the entities closed.
    public var ids: [Int64]
    public var values: [Double]
    public var opened: [Entity]
    public var closed: [(kind: EntityKind, key: String)]
}

/// Receives every tick after the store committed it: the live twin, later the uplink of an agent.
///
/// Called on the collection thread, one tick at a time and in time order; a sink must return quickly
/// (hand work to its own task or thread) since the next tick waits for it.
public protocol TickSink: Sendable {
    func committed(_ tick: CommittedTick)
    /// The collection loop stopped; no more ticks come.
    func collectionStopped()
}

extension LiveTwin: TickSink {
    public func committed(_ tick: CommittedTick) {
        let samples = tick.observation.samples
        update(samples: samples, ids: Self.ids(of: samples, stored: tick.ids), types: tick.observation.types,
               host: tick.observation.entities[.host]?.first?.attributes, health: tick.health, tick: tick.time, events: tick.events)
    }

    /// The stored series id of each sample: the store keeps a series' first sample of a tick, in order, so
    /// its ids line up with the samples unless a series came twice (then the later ones get -1).
    static func ids(of samples: [MetricSample], stored: [Int64]) -> [Int64] {
        if stored.count == samples.count { return stored }
        var seen = Set<SeriesKey>(), next = stored.makeIterator()
        return samples.map { seen.insert($0.key).inserted ? next.next() ?? -1 : -1 }
    }

    public func collectionStopped() { close() }
}
